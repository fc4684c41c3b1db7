// The stream half of the adapter conformance table (adapter-conformance.ts):
// tokens, max_tokens, split frames, one-chunk batches, errors before and
// inside the stream, the idle timeout, cancel, and an engine dying mid-stream.
import { setTimeout as sleep } from "node:timers/promises";
import test from "ava";
import { StopReason } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K } from "../../../contracts/gen/llama_orch/v1/worker.js";
import type { AnySpec } from "./adapter-conformance.js";
import { matches, setUp } from "./adapter-harness.js";
import { collect, eventually, submitRequest, within, workerFailure } from "./helpers.js";

function streamsTokens(spec: AnySpec): void {
  test("streams the engine's tokens in order, started once before them, with its stop reason and prompt count", async (t) => {
    const c = spec.streams;
    const { fake, adapter } = await setUp(t, spec, c.fake);
    const out = await collect(adapter, submitRequest(c.request));
    t.is(out.error, undefined);
    t.deepEqual(out.texts, c.tokens);
    if (c.started !== undefined) t.is(out.started, c.started);
    t.is(out.calls[0], `started:${out.started}`, "started comes before any token");
    t.is(out.calls.filter((call) => call.startsWith("started")).length, 1);
    t.true(out.batches.every((b) => b.length > 0));
    t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS);
    t.is(out.result?.tokensIn, c.tokensIn);
    t.is(typeof out.result?.decodeTimeMs, c.engineDecodeTime ? "number" : "undefined", "the engine's decode time, or the sidecar measures");
    if (c.engineRequest) {
      const [req] = fake.generations();
      if (c.engineRequest.path !== undefined) t.is(req!.path, c.engineRequest.path);
      t.deepEqual(req!.body, c.engineRequest.body);
      if (c.engineRequest.authorization !== undefined) t.is(req!.headers.authorization, c.engineRequest.authorization);
    }
    c.check?.(t, out);
  });
}

function stopsAtMaxTokens(spec: AnySpec): void {
  const c = spec.maxTokens;
  if (!c) return;
  test("max_tokens reached ends MAX_TOKENS with exactly that many tokens", async (t) => {
    const { adapter } = await setUp(t, spec, c.fake);
    const out = await collect(adapter, submitRequest({ maxTokens: c.maxTokens }));
    t.deepEqual(out.texts, c.tokens);
    t.is(out.result?.stopReason, StopReason.STOP_REASON_MAX_TOKENS);
  });
}

function survivesSplitFrames(spec: AnySpec): void {
  test("frames split across TCP chunks at any byte, inside multi-byte characters too, keep every token intact", async (t) => {
    const c = spec.split;
    for (const bytes of c.sizes) {
      const { adapter } = await setUp(t, spec, c.fake(c.tokens, bytes));
      const out = await collect(adapter, submitRequest(c.request));
      const at = `split every ${bytes} bytes`;
      t.is(out.error, undefined, at);
      t.deepEqual(out.texts, c.tokens, at);
      t.true(
        out.batches.every((b) => b.length > 0),
        at,
      );
      t.true(out.batches.length > 1, `${at}: the stream arrived in pieces`);
      t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS, at);
      if (c.tokensIn !== undefined) t.is(out.result?.tokensIn, c.tokensIn, at);
    }
  });
}

function batchesOneChunk(spec: AnySpec): void {
  const c = spec.oneChunk;
  if (!c) return;
  test("everything decoded from one socket chunk reaches the sink in one call, after started", async (t) => {
    const { adapter } = await setUp(t, spec, c.fake);
    const out = await collect(adapter, submitRequest(c.request));
    t.deepEqual(out.calls, [`started:${c.started}`, `tokens:${c.tokens.length}`]);
    t.deepEqual(out.batches, [c.tokens]);
    t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS);
    if (c.tokensIn !== undefined) t.is(out.result?.tokensIn, c.tokensIn);
  });
}

function mapsErrorsBeforeTheStream(spec: AnySpec): void {
  test("an error before the stream rejects with the mapped kind and the engine's message, and starts nothing", async (t) => {
    const { fake, adapter } = await setUp(t, spec);
    for (const row of spec.preStreamErrors) {
      fake.setBehaviour(row.behaviour);
      const out = await collect(adapter, submitRequest(row.request));
      const failure = workerFailure(t, out.error);
      const at = JSON.stringify(row.behaviour);
      t.is(failure.kind, row.kind, at);
      t.is(failure.retriable, row.retriable, at);
      matches(t, failure.message, row.message, at);
      t.is(out.started, undefined, at);
      t.deepEqual(out.texts, [], at);
    }
  });
}

function mapsErrorsInsideTheStream(spec: AnySpec): void {
  test("an error inside the stream fails ENGINE_ERROR after the tokens before it were delivered", async (t) => {
    const c = spec.inStreamError;
    const { adapter } = await setUp(t, spec, c.fake);
    const out = await collect(adapter, submitRequest(c.request));
    t.deepEqual(out.texts, c.tokens);
    t.is(out.started, c.started);
    const failure = workerFailure(t, out.error);
    t.is(failure.kind, K.WORKER_ERROR_KIND_ENGINE_ERROR);
    t.false(failure.retriable);
    matches(t, failure.message, c.message);
  });
}

function timesOutAHungStream(spec: AnySpec): void {
  test("an engine silent mid-stream fails TIMEOUT (retriable) after the idle timeout, and its request is closed", async (t) => {
    const c = spec.hang;
    const { fake, adapter } = await setUp(t, spec, c.fake, { idleTimeoutMs: c.idleTimeoutMs });
    const t0 = Date.now();
    const out = await collect(adapter, submitRequest());
    t.deepEqual(out.texts, c.tokens);
    const failure = workerFailure(t, out.error);
    t.is(failure.kind, K.WORKER_ERROR_KIND_TIMEOUT);
    t.true(failure.retriable);
    t.true(Date.now() - t0 < c.withinMs, "the configured idle timeout, not the 60 s default");
    t.true(await eventually(() => fake.generations()[0]?.closedByClient === true, 1_000), "the engine sees its request closed");
  });
}

function cancelsMidStream(spec: AnySpec): void {
  test("cancel mid-stream closes the engine's request and resolves CANCELED promptly", async (t) => {
    const c = spec.cancel;
    const { fake, adapter } = await setUp(t, spec, c.fake);
    const controller = new AbortController();
    let abortedAt = 0;
    const out = await collect(adapter, submitRequest({ maxTokens: c.total }), controller.signal, (seen) => {
      if (abortedAt > 0 || seen.texts.length < c.abortAfter) return;
      c.beforeAbort?.(t, fake);
      abortedAt = performance.now();
      controller.abort();
    });
    t.is(out.error, undefined);
    t.is(out.result?.stopReason, StopReason.STOP_REASON_CANCELED);
    t.true(performance.now() - abortedAt < c.settleWithinMs, "settled without waiting for the engine's next frame");
    t.true(out.texts.length < c.total);
    t.true(await eventually(() => fake.generations()[0]?.closedByClient === true, 1_000), "the engine sees the connection close");
    t.false(fake.generations()[0]!.finished);
    c.check?.(t, fake, out);
  });
}

function cancelsBeforeTheFirstToken(spec: AnySpec): void {
  test("cancel before the first token: an aborted signal sends nothing, an abort while the engine holds back closes its request", async (t) => {
    const c = spec.cancelEarly;
    const { fake, adapter } = await setUp(t, spec);
    const aborted = await collect(adapter, submitRequest(), AbortSignal.abort());
    t.deepEqual(aborted.result, { stopReason: StopReason.STOP_REASON_CANCELED });
    t.is(aborted.started, undefined);
    t.is(fake.generations().length, 0, "nothing reached the engine");

    fake.setBehaviour(c.hold);
    const controller = new AbortController();
    const pending = collect(adapter, submitRequest(), controller.signal);
    t.true(await eventually(() => fake.generations().length === 1));
    // Whatever the engine sends before its first token (a status line, a role-only chunk) has arrived.
    await sleep(50);
    controller.abort();
    const held = await within(pending, 1_000, "generate settles after the abort");
    t.is(held.result?.stopReason, StopReason.STOP_REASON_CANCELED);
    t.is(held.started, c.startedWhileHeld);
    t.true(await eventually(() => fake.generations()[0]?.closedByClient === true));
  });
}

function failsWhenTheEngineDies(spec: AnySpec): void {
  test("an engine that dies mid-stream fails RESET after the tokens it sent", async (t) => {
    const c = spec.diesMidStream;
    const { fake, adapter } = await setUp(t, spec, c.fake);
    let closing: Promise<void> | undefined;
    const out = await collect(adapter, submitRequest(), undefined, (seen) => {
      if (seen.texts.length >= c.tokens.length) closing ??= fake.close();
    });
    await closing;
    t.deepEqual(out.texts, c.tokens);
    t.is(workerFailure(t, out.error).kind, K.WORKER_ERROR_KIND_RESET);
  });
}

const CASES = [
  streamsTokens,
  stopsAtMaxTokens,
  survivesSplitFrames,
  batchesOneChunk,
  mapsErrorsBeforeTheStream,
  mapsErrorsInsideTheStream,
  timesOutAHungStream,
  cancelsMidStream,
  cancelsBeforeTheFirstToken,
  failsWhenTheEngineDies,
];

export function registerStreamCases(spec: AnySpec): void {
  for (const register of CASES) register(spec);
}
