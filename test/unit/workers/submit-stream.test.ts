import { EventEmitter } from "node:events";
import test from "ava";
import { StopReason } from "../../../contracts/gen/llama_orch/v1/common.js";
import type { SubmitResponse } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { SubmitStream, type SubmitCall } from "../../../workers/sidecar/submit-stream.js";

/** A Submit call whose write() answers as told, to drive backpressure by hand. */
class FakeCall extends EventEmitter {
  written: SubmitResponse[] = [];
  ended = false;
  writable = true;
  write(message: SubmitResponse): boolean {
    // Copy: the stream may keep appending to a pending batch, never to a written one.
    this.written.push(structuredClone(message));
    return this.writable;
  }
  end(): void {
    this.ended = true;
  }
  drain(): void {
    this.writable = true;
    this.emit("drain");
  }
}

function setup(): { call: FakeCall; stream: SubmitStream } {
  const call = new FakeCall();
  return { call, stream: new SubmitStream(call as unknown as SubmitCall, () => {}) };
}

const end = { $case: "end" as const, end: { tokensOut: 0, tokensIn: 0, decodeTimeMs: 0, stopReason: StopReason.STOP_REASON_MAX_TOKENS } };

function batches(call: FakeCall): Array<[number, string[]]> {
  return call.written.flatMap((m) =>
    m.event?.$case === "tokens" ? [[m.event.tokens.firstIndex, m.event.tokens.texts] as [number, string[]]] : [],
  );
}

test("while the call is writable every batch is written at once, even a lone token", (t) => {
  const { call, stream } = setup();
  stream.started(3);
  stream.tokens(["a"]);
  stream.tokens([" b", " c"]);
  t.deepEqual(batches(call), [
    [0, ["a"]],
    [1, [" b", " c"]],
  ]);
  t.is(call.written[0]!.event?.$case, "started");
});

test("once write() returns false, later batches merge into one message sent on drain", (t) => {
  const { call, stream } = setup();
  stream.started(1);
  call.writable = false;
  stream.tokens(["a"]); // written, and the call reports it is now full
  stream.tokens([" b"]);
  stream.tokens([" c", " d"]);
  t.deepEqual(batches(call), [[0, ["a"]]]);
  call.drain();
  t.deepEqual(batches(call), [
    [0, ["a"]],
    [1, [" b", " c", " d"]],
  ]);
  stream.tokens([" e"]);
  t.deepEqual(batches(call).at(-1), [4, [" e"]]);
});

test("pending tokens are flushed before the terminal event", (t) => {
  const { call, stream } = setup();
  stream.started(1);
  call.writable = false;
  stream.tokens(["a"]);
  stream.tokens([" b"]);
  stream.finish(end);
  t.deepEqual(batches(call), [
    [0, ["a"]],
    [1, [" b"]],
  ]);
  t.is(call.written.at(-1)!.event?.$case, "end");
  t.true(call.ended);
  t.is(stream.tokensOut, 2);
});

test("tokens before started still produce a started event first", (t) => {
  const { call, stream } = setup();
  stream.tokens(["a"]);
  t.deepEqual(
    call.written.map((m) => m.event?.$case),
    ["started", "tokens"],
  );
});

test("metrics frames are dropped rather than queued behind tokens", (t) => {
  const { call, stream } = setup();
  stream.started(1);
  stream.metrics({ tokensPerSecond: 5 });
  call.writable = false;
  stream.tokens(["a"]);
  stream.metrics({ tokensPerSecond: 6 });
  t.deepEqual(
    call.written.map((m) => m.event?.$case),
    ["started", "metrics", "tokens"],
  );
});

test("after the client left nothing more is written", (t) => {
  const { call, stream } = setup();
  stream.started(1);
  stream.abandon();
  stream.tokens(["a"]);
  stream.finish(end);
  t.deepEqual(
    call.written.map((m) => m.event?.$case),
    ["started"],
  );
  t.false(call.ended);
});
