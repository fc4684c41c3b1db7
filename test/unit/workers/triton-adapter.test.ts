import { setTimeout as sleep } from "node:timers/promises";
import test, { type ExecutionContext } from "ava";
import { Engine, StopReason } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K, type WorkerHealth } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure } from "../../../workers/engine-adapter.js";
import { TritonAdapter, type TritonAdapterOptions } from "../../../workers/triton/triton-adapter.js";
import { generateBody, layoutOf, parseChunk, unwrapSseErrorMessage } from "../../../workers/triton/triton-protocol.js";
import { startFakeTriton, type TritonFake, type TritonFakeOptions } from "../../fakes/triton-fake.js";
import { collect, eventually, submitRequest } from "./helpers.js";

const API_KEY = "sk-triton-SECRET-0123456789";

async function fake(t: ExecutionContext, opts: TritonFakeOptions = {}): Promise<TritonFake> {
  const f = await startFakeTriton(opts);
  t.teardown(() => f.close());
  return f;
}

/** An adapter with test-sized timers; `start` waits until the fake's model is ready. */
async function adapter(t: ExecutionContext, f: TritonFake, opts: Partial<TritonAdapterOptions> = {}, start = true): Promise<TritonAdapter> {
  const a = new TritonAdapter({
    baseUrl: f.url,
    modelRef: "hf:meta-llama/Llama-3.1-8B-Instruct",
    pollIntervalMs: 25,
    http: { idleTimeoutMs: 2_000, headersTimeoutMs: 2_000, connectTimeoutMs: 1_000, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } },
    health: { failureThreshold: 1, probeTimeoutMs: 1_000 },
    ...opts,
  });
  t.teardown(() => a.stop());
  if (start) await a.start();
  return a;
}

async function failure(t: ExecutionContext, promise: Promise<{ error?: unknown }>): Promise<WorkerFailure> {
  const { error } = await promise;
  t.true(error instanceof WorkerFailure, `expected a WorkerFailure, got ${String(error)}`);
  return error as WorkerFailure;
}

test("streams each response's text_output as one token, started first, EOS when the engine stops short of max_tokens", async (t) => {
  const f = await fake(t, { tokens: ["Hello", ",", " world", "!"], inputTokens: 7 });
  const a = await adapter(t, f);
  const order: string[] = [];
  const texts: string[] = [];
  const result = await a.generate(submitRequest({ prompt: "say hello", maxTokens: 16, seed: 42 }), new AbortController().signal, {
    started: (n) => order.push(`started:${n}`),
    tokens: (batch) => {
      order.push("tokens");
      texts.push(...batch);
    },
  });
  t.deepEqual(texts, ["Hello", ",", " world", "!"]);
  t.is(order[0], "started:0");
  t.is(result.stopReason, StopReason.STOP_REASON_EOS);
  t.is(result.tokensIn, 7, "num_input_tokens, asked for because the ensemble has return_num_input_tokens");
  const [req] = f.generations();
  t.is(req!.path, "/v2/models/ensemble/generate_stream");
  t.deepEqual(req!.body, { text_input: "say hello", stream: true, max_tokens: 16, seed: 42, return_num_input_tokens: true });
});

test("a stream that delivers max_tokens responses stopped for MAX_TOKENS", async (t) => {
  const f = await fake(t, { tokens: ["a", "b", "c", "d", "e", "f"] });
  const a = await adapter(t, f);
  const out = await collect(a, submitRequest({ maxTokens: 3 }));
  t.deepEqual(out.texts, ["a", "b", "c"]);
  t.is(out.result?.stopReason, StopReason.STOP_REASON_MAX_TOKENS);
});

test("frames split across TCP chunks at arbitrary bytes keep multi-byte characters intact, one sink call per chunk at most", async (t) => {
  const tokens = ["é", "日本", "🦙", " naïve", "\n", "ok \"quoted\"", "Ωmega"];
  // Every cut position inside the 2-, 3- and 4-byte characters, across runs.
  await Promise.all(
    [1, 3, 7].map(async (splitBytes) => {
      const f = await fake(t, { tokens, splitBytes });
      const a = await adapter(t, f);
      const out = await collect(a, submitRequest({ maxTokens: 100 }));
      t.deepEqual(out.texts, tokens, `split every ${splitBytes} bytes`);
      t.true(out.batches.every((b) => b.length > 0));
      t.true(out.batches.length > 1 && out.batches.length <= tokens.length, `${out.batches.length} batches`);
    }),
  );
});

test("responses arriving in one chunk reach the sink as one batch", async (t) => {
  // Many frames written back to back, slowed only at the start: the client reads several per chunk.
  const tokens = Array.from({ length: 200 }, (_, i) => `t${i}`);
  const f = await fake(t, { tokens });
  const a = await adapter(t, f);
  const out = await collect(a, submitRequest({ maxTokens: 500 }));
  t.deepEqual(out.texts, tokens);
  t.true(out.batches.length < tokens.length, `expected batching, got ${out.batches.length} batches`);
});

test("the seed goes where the model takes it: seed, random_seed, or vLLM's sampling_parameters", async (t) => {
  const legacy = await fake(t, { layout: "trtllm-legacy" });
  await collect(await adapter(t, legacy), submitRequest({ prompt: "p", maxTokens: 5, seed: 7 }));
  t.deepEqual(legacy.generations()[0]!.body, { text_input: "p", stream: true, max_tokens: 5, random_seed: 7 });

  const vllm = await fake(t, { layout: "vllm", modelName: "llama", tokens: ["x", "y", "z"] });
  const a = await adapter(t, vllm, { engineModel: "llama" });
  const out = await collect(a, submitRequest({ prompt: "p", maxTokens: 2, seed: 7 }));
  const body = vllm.generations()[0]!.body!;
  t.deepEqual(JSON.parse(body.sampling_parameters as string), { max_tokens: 2, seed: 7 });
  t.false("max_tokens" in body || "seed" in body || "random_seed" in body, "nothing vLLM would reject as an unknown sampling parameter");
  t.true(body.return_finish_reason);
  t.deepEqual(out.texts, ["x", "y"]);
  t.is(out.result?.stopReason, StopReason.STOP_REASON_MAX_TOKENS, "finish_reason length");
  t.is(a.info().features.seed, "true");
  t.is(a.info().features.seed_field, "sampling_parameters");

  const unseeded = await fake(t);
  await collect(await adapter(t, unseeded), submitRequest({ prompt: "p", maxTokens: 5 }));
  t.false("seed" in unseeded.generations()[0]!.body!, "no seed field without a seed");
});

test("an error before the stream rejects with the mapped kind and Triton's message", async (t) => {
  const cases = [
    { status: 400, error: "input length 9000 exceeds maximum input length 4096", kind: K.WORKER_ERROR_KIND_INVALID_REQUEST, retriable: false },
    { status: 500, error: "Executor failed process requestId 3", kind: K.WORKER_ERROR_KIND_ENGINE_ERROR, retriable: false },
    { status: 503, error: "Server is shutting down", kind: K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, retriable: true },
  ];
  const f = await fake(t);
  const a = await adapter(t, f);
  for (const c of cases) {
    for (const sse of [false, true]) {
      f.setBehaviour({ failBefore: { status: c.status, error: c.error, sse } });
      const out = await collect(a, submitRequest());
      const err = await failure(t, Promise.resolve(out));
      t.is(err.kind, c.kind, `${c.status} sse=${sse}`);
      t.is(err.retriable, c.retriable);
      t.is(err.message, `POST /v2/models/ensemble/generate_stream: HTTP ${c.status}: ${c.error}`, "the SSE-framed first-response error is unwrapped");
      t.is(out.started, undefined, "no started before the engine accepted the prompt");
    }
  }
});

test("an unknown model is this sidecar's misconfiguration: ENGINE_UNAVAILABLE, retriable on a sibling, and health is not ready", async (t) => {
  const f = await fake(t, { modelName: "ensemble" });
  const a = await adapter(t, f, { engineModel: "tensorrt_llm_bls" }, false);
  void a.start();
  t.true(await eventually(() => a.health().lastError.includes("not ready")));
  t.true(a.health().live);
  t.false(a.health().ready);
  const err = await failure(t, collect(a, submitRequest()));
  t.is(err.kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  t.true(err.retriable);
  t.regex(err.message, /HTTP 400: Request for unknown model: 'tensorrt_llm_bls' is not found/);
});

test("an error inside the stream fails ENGINE_ERROR after the tokens already delivered", async (t) => {
  const f = await fake(t, { tokens: ["one", " two", " three", " four"], failAfter: { tokens: 2, error: "Encountered an error in forwardAsync: CUDA out of memory" } });
  const a = await adapter(t, f);
  const out = await collect(a, submitRequest({ maxTokens: 10 }));
  t.deepEqual(out.texts, ["one", " two"]);
  t.is(out.started, 0);
  const err = await failure(t, Promise.resolve(out));
  t.is(err.kind, K.WORKER_ERROR_KIND_ENGINE_ERROR);
  t.false(err.retriable);
  t.is(err.message, "POST /v2/models/ensemble/generate_stream: Encountered an error in forwardAsync: CUDA out of memory");
});

test("an engine that goes silent mid-stream fails TIMEOUT after the idle timeout, keeping the tokens it sent", async (t) => {
  const f = await fake(t, { tokens: ["a", "b", "c", "d"], hangAfter: 2 });
  const a = await adapter(t, f, { http: { idleTimeoutMs: 150 } });
  const t0 = Date.now();
  const out = await collect(a, submitRequest({ maxTokens: 10 }));
  t.deepEqual(out.texts, ["a", "b"]);
  const err = await failure(t, Promise.resolve(out));
  t.is(err.kind, K.WORKER_ERROR_KIND_TIMEOUT);
  t.true(err.retriable);
  t.true(Date.now() - t0 < 2_000);
  t.true(await eventually(() => f.generations()[0]!.closedByClient), "the hung request's connection is closed");
});

test("an engine that never sends its first response fails TIMEOUT (headers come with the first token)", async (t) => {
  const f = await fake(t, { hangAfter: 0 });
  const a = await adapter(t, f, { http: { headersTimeoutMs: 150 } });
  const err = await failure(t, collect(a, submitRequest()));
  t.is(err.kind, K.WORKER_ERROR_KIND_TIMEOUT);
});

test("cancel closes the engine's request and resolves CANCELED promptly, mid-stream and before the first token", async (t) => {
  const f = await fake(t, { tokens: Array.from({ length: 1000 }, (_, i) => `w${i} `), frameDelayMs: 10 });
  const a = await adapter(t, f);
  const controller = new AbortController();
  const texts: string[] = [];
  const running = a.generate(submitRequest({ maxTokens: 1000 }), controller.signal, {
    started: () => {},
    tokens: (batch) => {
      texts.push(...batch);
      if (texts.length >= 3) controller.abort();
    },
  });
  const result = await running;
  t.is(result.stopReason, StopReason.STOP_REASON_CANCELED);
  t.true(await eventually(() => f.generations()[0]!.closedByClient), "Triton sees the connection close (and cancels the request)");
  t.true(f.generations()[0]!.tokensSent < 100);

  f.setBehaviour({ hangAfter: 0 });
  const early = new AbortController();
  const pending = collect(a, submitRequest(), early.signal);
  await eventually(() => f.generations().length === 2);
  early.abort();
  const out = await pending;
  t.is(out.result?.stopReason, StopReason.STOP_REASON_CANCELED);
  t.is(out.started, undefined);
  t.true(await eventually(() => f.generations()[1]!.closedByClient));
});

test("health follows an engine restart: down while it is gone, ready again with the new version after", async (t) => {
  let f = await startFakeTriton({ serverVersion: "2.50.0" });
  const port = f.port;
  t.teardown(() => f.close());
  const a = await adapter(t, f);
  t.is(a.info().engineVersion, "2.50.0");
  const seen: WorkerHealth[] = [];
  a.onHealthChange((h) => seen.push(h));

  await f.close();
  t.true(await eventually(() => !a.health().ready && !a.health().live), "down while nothing listens");
  t.regex(a.health().lastError, /ECONNREFUSED|ECONNRESET|socket hang up|closed/);
  const down = await collect(a, submitRequest());
  t.is((down.error as WorkerFailure).kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);

  f = await startFakeTriton({ port, serverVersion: "2.51.0" });
  t.true(await eventually(() => a.health().ready), "ready again once it is back");
  t.is(a.info().engineVersion, "2.51.0", "metadata re-read after the restart");
  t.true(seen.some((h) => !h.ready) && seen.at(-1)!.ready);
  t.deepEqual((await collect(a, submitRequest())).texts, ["Hello", ",", " world", "!"]);
});

test("a server that is up while its model loads is live but not ready; start() resolves once the model is ready", async (t) => {
  const f = await fake(t, { health: "loading" });
  const a = await adapter(t, f, {}, false);
  let started = false;
  const starting = a.start().then(() => (started = true));
  t.true(await eventually(() => a.health().lastError !== "not probed yet"));
  t.deepEqual(a.health(), { live: true, ready: false, lastError: "loading: model ensemble is not ready: Model version not ready" });
  await sleep(50);
  t.false(started);
  f.setBehaviour({ health: "ready" });
  await starting;
  t.true(a.health().ready);

  f.setBehaviour({ health: "down" });
  t.true(await eventually(() => !a.health().live));
  t.is(a.health().lastError, "GET /v2/health/live: HTTP 400");
});

test("info maps Triton's metadata: engine version, model version and platform; ctx and slots from options; no digest", async (t) => {
  const f = await fake(t, { serverVersion: "2.53.0", modelVersions: ["3", "2"] });
  const plain = await adapter(t, f);
  t.like(plain.info(), {
    engine: Engine.ENGINE_TRITON,
    adapter: "triton",
    engineVersion: "2.53.0",
    modelRef: "hf:meta-llama/Llama-3.1-8B-Instruct",
    modelDigest: "",
    ctxMax: 0,
    servesAnyModel: false,
    deviceMask: "",
    vramTotalBytes: 0,
  });
  t.deepEqual(plain.info().features, {
    seed: "true",
    seed_field: "seed",
    cancel: "abort",
    triton_model: "ensemble",
    triton_model_version: "3",
    triton_platform: "ensemble",
  });
  t.is(plain.slotsTotal(), 8);

  const tuned = await adapter(t, f, { ctxMax: 8192, slots: 32 });
  t.is(tuned.info().ctxMax, 8192);
  t.is(tuned.slotsTotal(), 32);

  const fresh = await adapter(t, f, {}, false);
  t.is(fresh.info().engineVersion, "", "unknown until the server answered");
  t.is(fresh.info().features.seed, "false");
});

test("the API key is sent as a bearer token and never appears in an error message", async (t) => {
  const f = await fake(t, { tokens: ["a", "b"] });
  const a = await adapter(t, f, { apiKey: API_KEY });
  await collect(a, submitRequest());
  t.is(f.generations()[0]!.headers.authorization, `Bearer ${API_KEY}`);
  t.true(f.requests.filter((r) => r.path.startsWith("/v2")).every((r) => r.headers.authorization === `Bearer ${API_KEY}`));

  const messages: string[] = [];
  f.setBehaviour({ failBefore: { status: 400, error: `bad header Authorization: Bearer ${API_KEY} (key ${API_KEY})` } });
  messages.push((await failure(t, collect(a, submitRequest()))).message);
  f.setBehaviour({ failBefore: { status: 500, error: `echo ${API_KEY}`, sse: true } });
  messages.push((await failure(t, collect(a, submitRequest()))).message);
  f.setBehaviour({ failBefore: undefined, failAfter: { tokens: 1, error: `in-stream ${API_KEY}` } });
  messages.push((await failure(t, collect(a, submitRequest()))).message);
  await f.close();
  messages.push((await failure(t, collect(a, submitRequest()))).message);
  await eventually(() => !a.health().ready);
  messages.push(a.health().lastError);

  t.is(messages.length, 5);
  for (const m of messages) t.false(m.includes(API_KEY), m);
  t.true(messages[0]!.includes("[redacted]"));
});

test("stop() reports stopped health and ends a pending start()", async (t) => {
  const f = await fake(t, { health: "loading" });
  const a = await adapter(t, f, {}, false);
  const seen: WorkerHealth[] = [];
  a.onHealthChange((h) => seen.push(h));
  const starting = a.start();
  await eventually(() => seen.length > 0);
  await a.stop();
  await starting;
  t.deepEqual(a.health(), { live: false, ready: false, lastError: "stopped" });
  t.deepEqual(seen.at(-1), { live: false, ready: false, lastError: "stopped" });
});

test("protocol: layouts, bodies, frames and SSE-framed error bodies", (t) => {
  const trt = layoutOf({ inputs: [{ name: "text_input" }, { name: "max_tokens" }, { name: "seed" }, { name: "random_seed" }] });
  t.is(trt.seedRoute, "seed", "seed wins where both exist");
  const bare = layoutOf({ inputs: [{ name: "text_input" }] });
  t.deepEqual(bare, { seedRoute: "seed", seedHonoured: false, askInputTokens: false, askFinishReason: false });
  t.deepEqual(generateBody({ prompt: "p", maxTokens: 0, seed: 0 }, bare), { text_input: "p", stream: true, seed: 0 });

  t.deepEqual(parseChunk('{"model_name":"m","model_version":"1","text_output":["a","b"],"num_input_tokens":[5]}'), { text: "a", inputTokens: 5 });
  t.deepEqual(parseChunk('{"error":"boom"}'), { error: "boom" });
  t.is(parseChunk("[1]"), undefined);
  t.is(parseChunk("not json"), undefined);

  t.is(unwrapSseErrorMessage('POST /p: HTTP 400: data: {"error":"too long"}'), "POST /p: HTTP 400: too long");
  t.is(unwrapSseErrorMessage("POST /p: HTTP 400: plain"), "POST /p: HTTP 400: plain");
  t.is(unwrapSseErrorMessage('POST /p: HTTP 400: data: {"error":"cut'), 'POST /p: HTTP 400: data: {"error":"cut');
});
