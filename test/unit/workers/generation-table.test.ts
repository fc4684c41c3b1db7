import { EventEmitter } from "node:events";
import test from "ava";
import { StopReason } from "../../../contracts/gen/llama_orch/v1/common.js";
import { SubmitRequest, type SubmitResponse } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { GenerationTable } from "../../../workers/sidecar/generation-table.js";
import type { SubmitCall } from "../../../workers/sidecar/submit-stream.js";
import { quietLogger } from "../../support/log-capture.js";

/** A Submit call as the server side sees it: what was written to it, and whether it ended. */
class FakeCall extends EventEmitter {
  written: SubmitResponse[] = [];
  ended = false;
  constructor(readonly request: SubmitRequest) {
    super();
  }
  write(message: SubmitResponse): boolean {
    this.written.push(structuredClone(message));
    return true;
  }
  end(): void {
    this.ended = true;
  }
}

const call = (taskId: string, resume?: { tokensReceived: number; resultsReceived: number }) =>
  new FakeCall(SubmitRequest.fromPartial({ taskId, detachable: true, resume }));
const end = { $case: "end" as const, end: { tokensOut: 2, tokensIn: 1, decodeTimeMs: 1, stopReason: StopReason.STOP_REASON_MAX_TOKENS } };

/** Runs a two-token generation on its call to the end. */
function runToEnd(table: GenerationTable, taskId: string): FakeCall {
  const c = call(taskId);
  const g = table.start(
    c as unknown as SubmitCall,
    () => {},
    quietLogger,
    () => {},
  );
  g.record.started(1);
  g.record.tokens(["a", "b"]);
  g.settle(end, undefined);
  return c;
}

test("a generation that ended on its call just before core's lease was lost is held, and handed over from the caller's tokens", (t) => {
  const table = new GenerationTable();
  const first = runToEnd(table, "t1");
  t.true(first.ended);
  t.deepEqual(table.heldTaskIds(), [], "while core is there, an ended generation is not held");
  table.coreLost();
  t.deepEqual(table.heldTaskIds(), ["t1"], "its end may have died with core");
  const resumed = call("t1", { tokensReceived: 1, resultsReceived: 0 });
  t.true(table.resume(resumed as unknown as SubmitCall));
  t.deepEqual(
    resumed.written.map((m) => m.event),
    [
      { $case: "started", started: { tokensIn: 1 } },
      { $case: "tokens", tokens: { firstIndex: 1, texts: ["b"] } },
      { $case: "end", end: end.end },
    ],
  );
  t.true(resumed.ended);
  t.deepEqual(table.heldTaskIds(), [], "handed over whole, it is no longer held");
});

test("a call cancelled after its end was written leaves nothing held (core closing a finished call is no broken call)", (t) => {
  const table = new GenerationTable();
  const c = runToEnd(table, "done");
  c.emit("cancelled");
  t.deepEqual(table.heldTaskIds(), []);
  t.is(table.runningCount, 0);
  table.closeAll();
});

test("while core is away every generation that ends is held; once it is back, none is", (t) => {
  const table = new GenerationTable();
  table.coreLost();
  runToEnd(table, "away");
  t.deepEqual(table.heldTaskIds(), ["away"]);
  table.coreBack();
  runToEnd(table, "back");
  t.deepEqual(table.heldTaskIds(), ["away"]);
  t.true(table.cancel("away"), "core cancels what it does not want");
  t.deepEqual(table.heldTaskIds(), []);
  table.closeAll();
});
