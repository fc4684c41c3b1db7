import test, { type ExecutionContext } from "ava";
import { Engine, StopReason, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K, type WorkerHealth } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure, type GenerationSink } from "../../../workers/engine-adapter.js";
import { TgiAdapter, createTgiAdapter, type HttpEngineOptions, type TgiTuning } from "../../../workers/tgi/tgi-adapter.js";
import { parseStreamEvent, statusOfErrorType, stopReasonOf } from "../../../workers/tgi/tgi-protocol.js";
import { TGI_FAKE_DEFAULTS, startFakeTgi, type TgiFake, type TgiFakeOptions } from "../../fakes/tgi-fake.js";
import { collect, eventually, submitRequest } from "./helpers.js";

/** What the fake streams by default, minus its special "</s>" (which the adapter must not pass on). */
const DEFAULT_TEXTS = TGI_FAKE_DEFAULTS.tokens;
// Generous probe timeout: under a loaded CI a probe that times out would read as "down", not as what the fake said.
const FAST: TgiTuning = { idleTimeoutMs: 5_000, probeTimeoutMs: 3_000, failureThreshold: 2 };

async function fake(t: ExecutionContext, opts: TgiFakeOptions = {}): Promise<TgiFake> {
  const f = await startFakeTgi(opts);
  t.teardown(() => f.close());
  return f;
}

async function adapter(t: ExecutionContext, f: TgiFake, opts: Partial<HttpEngineOptions> = {}, tuning: TgiTuning = {}): Promise<TgiAdapter> {
  const a = new TgiAdapter({ baseUrl: f.url, modelRef: "hf:fake-org/tiny-llama", pollIntervalMs: 20, ...opts }, { ...FAST, ...tuning });
  t.teardown(() => a.stop());
  await a.start();
  return a;
}

async function failureOf(t: ExecutionContext, error: unknown): Promise<WorkerFailure> {
  t.true(error instanceof WorkerFailure, `expected a WorkerFailure, got ${String(error)}`);
  return error as WorkerFailure;
}

/** A sink that records the order of calls, for "started before tokens". */
function orderedSink(): { sink: GenerationSink; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    sink: {
      started: (n) => calls.push(`started:${n}`),
      tokens: (texts) => calls.push(`tokens:${texts.length}`),
    },
  };
}

test("streams every token's text in order, without the special EOS token, and ends EOS", async (t) => {
  const f = await fake(t);
  const a = await adapter(t, f);
  const out = await collect(a, submitRequest({ prompt: "tell me a story", maxTokens: 50 }));
  t.is(out.error, undefined);
  t.deepEqual(out.texts, DEFAULT_TEXTS);
  t.false(out.texts.includes("</s>"));
  t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS);
  t.is(out.result?.tokensIn, 4, "details.input_length: the fake counts prompt words");
  t.is(out.result?.decodeTimeMs, undefined, "TGI's stream reports no timings: the sidecar measures");
  t.true(out.batches.every((b) => b.length > 0));
});

test("sends TGI's GenerateRequest: inputs, max_new_tokens, seed and details, no sampling overrides", async (t) => {
  const f = await fake(t);
  const a = await adapter(t, f);
  await collect(a, submitRequest({ prompt: "hello there", maxTokens: 7, seed: 42 }));
  await collect(a, submitRequest({ prompt: "no seed", maxTokens: 3 }));
  const [seeded, unseeded] = f.generations();
  t.deepEqual(seeded!.body, { inputs: "hello there", parameters: { details: true, max_new_tokens: 7, seed: 42 } });
  t.deepEqual(unseeded!.body, { inputs: "no seed", parameters: { details: true, max_new_tokens: 3 } });
  t.is(seeded!.headers.accept, "text/event-stream");
  t.is(seeded!.headers.authorization, undefined);
});

test("max_tokens reached ends MAX_TOKENS with exactly that many tokens; a stop sequence ends STOP_WORD", async (t) => {
  const f = await fake(t);
  const a = await adapter(t, f);
  const capped = await collect(a, submitRequest({ maxTokens: 4 }));
  t.deepEqual(capped.texts, DEFAULT_TEXTS.slice(0, 4));
  t.is(capped.result?.stopReason, StopReason.STOP_REASON_MAX_TOKENS);

  f.setBehaviour({ finish: "stop_sequence" });
  const stopped = await collect(a, submitRequest({ maxTokens: 50 }));
  t.deepEqual(stopped.texts, DEFAULT_TEXTS);
  t.is(stopped.result?.stopReason, StopReason.STOP_REASON_STOP_WORD);
});

test("frames split across TCP chunks at any byte keep texts and multi-byte characters intact", async (t) => {
  const f = await fake(t);
  const a = await adapter(t, f);
  for (const chunkBytes of [3, 7, 64]) {
    f.setBehaviour({ chunkBytes });
    const out = await collect(a, submitRequest({ prompt: "split me", maxTokens: 50 }));
    t.deepEqual(out.texts, DEFAULT_TEXTS, `chunkBytes ${chunkBytes}`);
    t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS);
    t.is(out.result?.tokensIn, 2);
    t.true(out.batches.length > 1, "tokens arrive as they are decoded, not at the end");
  }
});

test("everything decoded from one socket chunk goes to the sink in one call, started first with the prompt count", async (t) => {
  const f = await fake(t, { burst: true });
  const a = await adapter(t, f);
  const { sink, calls } = orderedSink();
  const result = await a.generate(submitRequest({ prompt: "one two three four", maxTokens: 50 }), new AbortController().signal, sink);
  t.deepEqual(calls, ["started:4", `tokens:${DEFAULT_TEXTS.length}`]);
  t.is(result.tokensIn, 4);
});

test("started comes once, before the first tokens, with 0 when the prompt count only arrives at the end", async (t) => {
  const f = await fake(t, { frameDelayMs: 5 });
  const a = await adapter(t, f);
  const { sink, calls } = orderedSink();
  const result = await a.generate(submitRequest({ prompt: "a b", maxTokens: 50 }), new AbortController().signal, sink);
  t.is(calls[0], "started:0");
  t.is(calls.filter((c) => c.startsWith("started")).length, 1);
  t.true(calls.slice(1).every((c) => c.startsWith("tokens:")));
  t.is(result.tokensIn, 2);
});

test("TGI before 2.0 (no input_length in StreamDetails) leaves tokensIn unknown", async (t) => {
  const f = await fake(t, { detailsStyle: "v1" });
  const a = await adapter(t, f);
  const out = await collect(a, submitRequest({ maxTokens: 50 }));
  t.deepEqual(out.texts, DEFAULT_TEXTS);
  t.is(out.started, 0);
  t.is(out.result?.tokensIn, undefined);
});

const preStreamErrors: [number, string, string, K][] = [
  [422, "Input validation error: `inputs` must have less than 4095 tokens. Given: 5000", "validation", K.WORKER_ERROR_KIND_INVALID_REQUEST],
  [424, "Request failed during generation: Server error: CUDA out of memory", "generation", K.WORKER_ERROR_KIND_ENGINE_ERROR],
  [429, "Model is overloaded", "overloaded", K.WORKER_ERROR_KIND_CAPACITY],
  [500, "Incomplete generation", "incomplete_generation", K.WORKER_ERROR_KIND_ENGINE_ERROR],
];

for (const [status, message, errorType, kind] of preStreamErrors) {
  test(`HTTP ${status} before the stream rejects ${K[kind]} with TGI's message`, async (t) => {
    const f = await fake(t, { failBefore: { status, error: message, errorType } });
    const a = await adapter(t, f);
    const out = await collect(a, submitRequest());
    const failure = await failureOf(t, out.error);
    t.is(failure.kind, kind);
    t.true(failure.message.includes(message), failure.message);
    t.true(failure.message.includes(`HTTP ${status}`), failure.message);
    t.is(failure.retriable, kind === K.WORKER_ERROR_KIND_CAPACITY);
    t.is(out.started, undefined);
    t.deepEqual(out.texts, []);
  });
}

test("refusals TGI sends as the stream's first frame are classified by error_type, before started", async (t) => {
  const f = await fake(t);
  const a = await adapter(t, f);

  f.setBehaviour({ failAfter: { tokens: 0, error: "Model is overloaded", errorType: "overloaded" } });
  const overloaded = await collect(a, submitRequest());
  const capacity = await failureOf(t, overloaded.error);
  t.is(capacity.kind, K.WORKER_ERROR_KIND_CAPACITY);
  t.true(capacity.retriable);
  t.is(capacity.message, "POST /generate_stream: Model is overloaded");
  t.is(overloaded.started, undefined);

  f.setBehaviour({ failAfter: undefined });
  const empty = await collect(a, submitRequest({ prompt: "" }));
  const invalid = await failureOf(t, empty.error);
  t.is(invalid.kind, K.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.false(invalid.retriable);
  t.true(invalid.message.includes("`inputs` cannot be empty"), invalid.message);
  t.deepEqual(empty.texts, []);
});

test("an error inside the stream rejects ENGINE_ERROR after the tokens already delivered", async (t) => {
  const f = await fake(t, { failAfter: { tokens: 3, error: "Request failed during generation: Server error: CUDA out of memory", errorType: "generation" } });
  const a = await adapter(t, f);
  const out = await collect(a, submitRequest({ maxTokens: 50 }));
  t.deepEqual(out.texts, DEFAULT_TEXTS.slice(0, 3));
  t.is(out.started, 0);
  const failure = await failureOf(t, out.error);
  t.is(failure.kind, K.WORKER_ERROR_KIND_ENGINE_ERROR);
  t.false(failure.retriable);
  t.true(failure.message.includes("CUDA out of memory"), failure.message);
});

test("an in-stream error arriving in the same chunk as tokens still delivers those tokens first", async (t) => {
  const f = await fake(t, { burst: true, failAfter: { tokens: 2 } });
  const a = await adapter(t, f);
  const out = await collect(a, submitRequest({ maxTokens: 50 }));
  t.deepEqual(out.batches, [DEFAULT_TEXTS.slice(0, 2)]);
  t.is((await failureOf(t, out.error)).kind, K.WORKER_ERROR_KIND_ENGINE_ERROR);
});

test("an engine silent past the idle timeout rejects TIMEOUT (retriable) and the request is closed", async (t) => {
  const f = await fake(t, { hangAfter: 2 });
  const a = await adapter(t, f, {}, { idleTimeoutMs: 200 });
  const t0 = Date.now();
  const out = await collect(a, submitRequest({ maxTokens: 50 }));
  const failure = await failureOf(t, out.error);
  t.is(failure.kind, K.WORKER_ERROR_KIND_TIMEOUT);
  t.true(failure.retriable);
  t.deepEqual(out.texts, DEFAULT_TEXTS.slice(0, 2));
  t.true(Date.now() - t0 < 3_000);
  t.true(await eventually(() => f.generations()[0]!.closedByClient));
});

test("TGI's keep-alive comments keep a waiting stream alive past the idle timeout", async (t) => {
  const f = await fake(t, { hangAfter: 1, keepAliveMs: 40 });
  const a = await adapter(t, f, {}, { idleTimeoutMs: 200 });
  const controller = new AbortController();
  const running = collect(a, submitRequest({ maxTokens: 50 }), controller.signal);
  t.true(await eventually(() => f.generations().length === 1, 5_000));
  // Three idle timeouts of nothing but keep-alives.
  await new Promise((r) => setTimeout(r, 600));
  controller.abort();
  const out = await running;
  t.is(out.error, undefined);
  t.is(out.result?.stopReason, StopReason.STOP_REASON_CANCELED);
  t.deepEqual(out.texts, DEFAULT_TEXTS.slice(0, 1));
});

test("cancel closes the engine request (TGI sees the socket close) and resolves CANCELED promptly", async (t) => {
  const f = await fake(t, { frameDelayMs: 30 });
  const a = await adapter(t, f);
  const controller = new AbortController();
  let tokens = 0;
  const running = a.generate(submitRequest({ maxTokens: 50 }), controller.signal, {
    started: () => {},
    tokens: (texts) => {
      tokens += texts.length;
      if (tokens >= 2) controller.abort();
    },
  });
  const t0 = Date.now();
  const result = await running;
  t.is(result.stopReason, StopReason.STOP_REASON_CANCELED);
  t.true(Date.now() - t0 < 2_000);
  t.true(tokens < DEFAULT_TEXTS.length);
  t.true(await eventually(() => f.generations()[0]!.closedByClient), "the fake saw the client close the stream");
  t.false(f.generations()[0]!.finished);
});

test("cancel before TGI answers resolves CANCELED as well", async (t) => {
  const f = await fake(t, { hangAfter: 0 });
  const a = await adapter(t, f);
  const aborted = new AbortController();
  aborted.abort();
  t.is((await a.generate(submitRequest(), aborted.signal, orderedSink().sink)).stopReason, StopReason.STOP_REASON_CANCELED);

  const controller = new AbortController();
  const running = collect(a, submitRequest(), controller.signal);
  t.true(await eventually(() => f.generations().length === 1));
  controller.abort();
  t.is((await running).result?.stopReason, StopReason.STOP_REASON_CANCELED);
  t.true(await eventually(() => f.generations()[0]!.closedByClient));
});

test("TGI dying mid-stream rejects RESET after the tokens it sent; an engine not listening rejects ENGINE_UNAVAILABLE", async (t) => {
  const f = await fake(t, { hangAfter: 2 });
  const a = await adapter(t, f);
  const running = collect(a, submitRequest({ maxTokens: 50 }));
  t.true(await eventually(() => f.generations().length === 1));
  await new Promise((r) => setTimeout(r, 50));
  await f.close();
  const died = await running;
  t.deepEqual(died.texts, DEFAULT_TEXTS.slice(0, 2));
  t.is((await failureOf(t, died.error)).kind, K.WORKER_ERROR_KIND_RESET);

  const gone = await collect(a, submitRequest());
  const unavailable = await failureOf(t, gone.error);
  t.is(unavailable.kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  t.true(unavailable.retriable);
});

test("consecutive generations reuse one keep-alive connection", async (t) => {
  const f = await fake(t);
  const a = await adapter(t, f);
  const before = f.connections();
  for (let i = 0; i < 3; i++) t.is((await collect(a, submitRequest({ maxTokens: 50 }))).result?.stopReason, StopReason.STOP_REASON_EOS);
  t.is(f.connections() - before, 1);
});

test("info maps /info: version, ctx, slots, model_sha as the digest", async (t) => {
  const f = await fake(t);
  const a = await adapter(t, f);
  const info = a.info();
  t.is(info.engine, Engine.ENGINE_TGI);
  t.is(info.adapter, "tgi");
  t.is(info.engineVersion, "2.4.1");
  t.is(info.modelRef, "hf:fake-org/tiny-llama");
  t.is(info.modelDigest, "e985a63cdc139290c5f700ff1929f0b5942cced2");
  t.is(info.ctxMax, 4096);
  t.deepEqual(info.workloads, [Workload.WORKLOAD_COMPLETION]);
  t.false(info.servesAnyModel);
  t.is(info.deviceMask, "");
  t.deepEqual(info.features, { seed: "true", cancel: "abort" });
  t.is(a.slotsTotal(), 128);
});

test("info without model_sha (a local model path) leaves the digest empty; --slots overrides max_concurrent_requests", async (t) => {
  const f = await fake(t, { info: { model_sha: null, max_concurrent_requests: 16, max_total_tokens: 2048, max_input_tokens: undefined, max_input_length: 1024, version: "1.4.5" } });
  const a = await adapter(t, f);
  t.is(a.info().modelDigest, "");
  t.is(a.info().engineVersion, "1.4.5");
  t.is(a.info().ctxMax, 2048);
  t.is(a.slotsTotal(), 16);

  const overridden = await adapter(t, f, { slots: 4 });
  t.is(overridden.slotsTotal(), 4);
});

test("before /info is read: no version or digest, and TGI's default concurrency as slots", (t) => {
  const a = createTgiAdapter({ baseUrl: "http://127.0.0.1:9", modelRef: "m" });
  t.is(a.info().engineVersion, "");
  t.is(a.info().modelDigest, "");
  t.is(a.info().ctxMax, 0);
  t.is(a.slotsTotal(), 128);
  t.false(a.health().ready);
});

test("health: 503 from /health is not ready; start() resolves once TGI reports ready", async (t) => {
  const f = await fake(t, { health: "loading" });
  const a = new TgiAdapter({ baseUrl: f.url, modelRef: "m", pollIntervalMs: 20 }, FAST);
  t.teardown(() => a.stop());
  let started = false;
  const starting = a.start().then(() => (started = true));
  t.true(await eventually(() => a.health().lastError !== "not probed yet"));
  t.false(a.health().ready);
  t.true(a.health().lastError.includes("HTTP 503: unhealthy"), a.health().lastError);
  t.false(started);
  f.setBehaviour({ health: "ready" });
  await starting;
  t.deepEqual(a.health(), { live: true, ready: true, lastError: "" });
});

test("engine restart: health goes down, then ready again, and /info is read again", async (t) => {
  const first = await startFakeTgi();
  t.teardown(() => first.close());
  const a = await adapter(t, first);
  const changes: WorkerHealth[] = [];
  a.onHealthChange((h) => changes.push(h));
  t.true(a.health().ready);

  await first.close();
  t.true(await eventually(() => !a.health().live && !a.health().ready), "down after the failure threshold");
  t.true(a.health().lastError.includes("ECONNREFUSED"), a.health().lastError);

  const second = await fake(t, { port: first.port, info: { version: "2.4.2", model_sha: "0123456789abcdef0123456789abcdef01234567" } });
  t.true(await eventually(() => a.health().ready), "ready again once the engine answers");
  t.is(a.info().engineVersion, "2.4.2");
  t.is(a.info().modelDigest, "0123456789abcdef0123456789abcdef01234567");
  t.false(changes[0]!.ready);
  t.true(changes.at(-1)!.ready);
  t.is(changes.filter((h) => h.ready).length, 1, "not ready from the first change until the engine came back");
  t.is((await collect(a, submitRequest({ maxTokens: 50 }))).result?.stopReason, StopReason.STOP_REASON_EOS);
  t.true(second.generations().length === 1);
});

test("a dying engine (sockets dropped unanswered) is reported down, and stop() reports stopped", async (t) => {
  const f = await fake(t);
  const a = await adapter(t, f);
  f.setBehaviour({ health: "down" });
  t.true(await eventually(() => !a.health().ready));
  const seen: WorkerHealth[] = [];
  a.onHealthChange((h) => seen.push(h));
  await a.stop();
  t.deepEqual(a.health(), { live: false, ready: false, lastError: "stopped" });
  t.deepEqual(seen.at(-1), { live: false, ready: false, lastError: "stopped" });
});

test("the API key is sent as a bearer token and never appears in an error or in health", async (t) => {
  const key = "hf_SECRETsecret0123456789";
  const f = await fake(t, { apiKey: key });
  const a = await adapter(t, f, { apiKey: key });
  const ok = await collect(a, submitRequest({ maxTokens: 50 }));
  t.is(ok.result?.stopReason, StopReason.STOP_REASON_EOS);
  t.is(f.generations()[0]!.headers.authorization, `Bearer ${key}`);

  const messages: string[] = [];
  f.setBehaviour({ failBefore: { status: 422, error: `Input validation error: bad header Authorization: Bearer ${key} (key ${key})`, errorType: "validation" } });
  messages.push((await failureOf(t, (await collect(a, submitRequest())).error)).message);
  f.setBehaviour({ failBefore: undefined, failAfter: { tokens: 1, error: `Request failed during generation: token ${key} rejected`, errorType: "generation" } });
  messages.push((await failureOf(t, (await collect(a, submitRequest({ maxTokens: 50 }))).error)).message);

  const wrongKey = await adapter(t, f, { apiKey: "hf_wrongKEY987654321" });
  const unauthorized = await failureOf(t, (await collect(wrongKey, submitRequest())).error);
  t.is(unauthorized.kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  messages.push(unauthorized.message);

  f.setBehaviour({ health: "loading" });
  t.true(await eventually(() => !a.health().ready));
  messages.push(a.health().lastError);

  for (const message of messages) {
    t.false(message.includes(key), message);
    t.false(message.includes("hf_wrongKEY987654321"), message);
  }
  t.true(messages[0]!.includes("[redacted]"), messages[0]);
  t.true(messages[1]!.includes("[redacted]"), messages[1]);
});

test("protocol mappings: finish reasons, error types, frames", (t) => {
  t.is(stopReasonOf("length"), StopReason.STOP_REASON_MAX_TOKENS);
  t.is(stopReasonOf("eos_token"), StopReason.STOP_REASON_EOS);
  t.is(stopReasonOf("stop_sequence"), StopReason.STOP_REASON_STOP_WORD);
  t.is(stopReasonOf(undefined), StopReason.STOP_REASON_UNSPECIFIED);
  t.is(statusOfErrorType("validation"), 422);
  t.is(statusOfErrorType("overloaded"), 429);
  t.is(statusOfErrorType("generation"), 424);
  t.is(statusOfErrorType("incomplete_generation"), 500);
  t.is(statusOfErrorType("something new"), 500);

  t.deepEqual(parseStreamEvent('{"index":1,"token":{"id":5,"text":" hi","logprob":-0.1,"special":false},"generated_text":null,"details":null}'), { type: "token", text: " hi" });
  t.deepEqual(
    parseStreamEvent('{"index":2,"token":{"id":2,"text":"</s>","logprob":-0.1,"special":true},"generated_text":" hi","details":{"finish_reason":"eos_token","generated_tokens":2,"seed":null,"prefill":[{},{},{}]}}'),
    { type: "token", text: undefined, end: { stopReason: StopReason.STOP_REASON_EOS, tokensIn: 3 } },
  );
  t.like(parseStreamEvent('{"error":"Model is overloaded","error_type":"overloaded"}'), { type: "error", kind: K.WORKER_ERROR_KIND_CAPACITY });
  t.like(parseStreamEvent("not json"), { type: "error", kind: K.WORKER_ERROR_KIND_ENGINE_ERROR });
  t.like(parseStreamEvent('{"unexpected":true}'), { type: "error", kind: K.WORKER_ERROR_KIND_ENGINE_ERROR });
});
