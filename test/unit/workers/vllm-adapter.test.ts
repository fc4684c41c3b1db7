import test, { type ExecutionContext } from "ava";
import { Engine, StopReason, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure } from "../../../workers/engine-adapter.js";
import { maxOf, parsePromText, sumOf } from "../../../workers/http/prometheus-text.js";
import { createVllmAdapter, vllmLoadOf, type VllmAdapter, type VllmAdapterOptions } from "../../../workers/vllm/vllm-adapter.js";
import { FAKE_DEFAULTS, startFakeVllm, type FakeOpenAi, type FakeOptions } from "../../fakes/openai-fake.js";
import { collect, eventually, submitRequest } from "./helpers.js";

const API_KEY = "vllm-key-9f8e7d6c5b4a-SECRET";
const FAST_RETRY = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 };

async function fake(t: ExecutionContext, opts: Omit<FakeOptions, "flavour"> = {}): Promise<FakeOpenAi> {
  const f = await startFakeVllm({ apiKey: API_KEY, models: ["meta-llama/Llama-3.1-8B-Instruct"], ...opts });
  t.teardown(() => f.close());
  return f;
}

function adapter(t: ExecutionContext, f: { url: string }, opts: Partial<VllmAdapterOptions> = {}): VllmAdapter {
  const a = createVllmAdapter({
    baseUrl: f.url,
    modelRef: "hf:meta-llama/Llama-3.1-8B-Instruct",
    apiKey: API_KEY,
    pollIntervalMs: 20,
    http: { idleTimeoutMs: 2_000, retry: FAST_RETRY },
    ...opts,
  });
  t.teardown(() => a.stop());
  return a;
}

async function ready(t: ExecutionContext, f: FakeOpenAi, opts: Partial<VllmAdapterOptions> = {}): Promise<VllmAdapter> {
  const a = adapter(t, f, opts);
  await within(a.start(), 3_000, "adapter ready");
  return a;
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

function failureOf(t: ExecutionContext, err: unknown): WorkerFailure {
  t.true(err instanceof WorkerFailure, `expected a WorkerFailure, got ${String(err)}`);
  return err as WorkerFailure;
}

test("completions by default: streams the tokens under the served model name, with seed, max_tokens and usage", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f);
  const out = await collect(a, submitRequest({ prompt: "the quick brown fox", maxTokens: 16, seed: 7 }));
  t.is(out.error, undefined);
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens);
  t.is(out.started, 0);
  t.deepEqual(out.result, { stopReason: StopReason.STOP_REASON_EOS, tokensIn: 4 });
  const [req] = f.generations();
  t.is(req!.path, "/v1/completions");
  t.deepEqual(req!.body, {
    model: "meta-llama/Llama-3.1-8B-Instruct",
    prompt: "the quick brown fox",
    max_tokens: 16,
    stream: true,
    stream_options: { include_usage: true },
    seed: 7,
  });
  t.is(req!.headers.authorization, `Bearer ${API_KEY}`);
});

test("finish_reason length on the last token's chunk maps to MAX_TOKENS", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f);
  const out = await collect(a, submitRequest({ maxTokens: 4 }));
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens.slice(0, 4));
  t.is(out.result?.stopReason, StopReason.STOP_REASON_MAX_TOKENS);
});

test("api: chat streams delta contents from /v1/chat/completions", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f, { api: "chat" });
  const out = await collect(a, submitRequest({ prompt: "hi there", maxTokens: 16 }));
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens);
  t.deepEqual(out.result, { stopReason: StopReason.STOP_REASON_EOS, tokensIn: 2 });
  t.deepEqual(f.generations()[0]!.body.messages, [{ role: "user", content: "hi there" }]);
});

test("frames split across TCP chunks keep tokens and multi-byte characters intact", async (t) => {
  const tokens = ["🦙", " naïve", " 中文字", "\u00e9", " ok"];
  for (const splitBytes of [1, 2, 5]) {
    const f = await fake(t, { tokens, splitBytes });
    const a = await ready(t, f);
    const out = await collect(a, submitRequest({ maxTokens: 16 }));
    t.deepEqual(out.texts, tokens, `splitBytes ${splitBytes}`);
    t.true(out.batches.length > 1, "the stream arrived in pieces");
    t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS);
  }
});

test("an error before the stream (vLLM's flat error body) rejects with the mapped kind and vLLM's message", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f);
  const message = "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.";
  f.setBehaviour({ failBefore: { status: 400, message } });
  let failure = failureOf(t, (await collect(a, submitRequest())).error);
  t.is(failure.kind, K.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.is(failure.message, `POST /v1/completions: HTTP 400: ${message}`);

  f.setBehaviour({ failBefore: undefined, health: "down" });
  failure = failureOf(t, (await collect(a, submitRequest())).error);
  t.is(failure.kind, K.WORKER_ERROR_KIND_ENGINE_ERROR);
  t.regex(failure.message, /HTTP 500: engine dead/);
});

test("a request for a model vLLM does not serve is INVALID_REQUEST with vLLM's 404 message", async (t) => {
  const f = await fake(t);
  // Generating before the first probe identified the served model: the engine model is what gets sent.
  const a = adapter(t, f, { engineModel: "not-served" });
  const failure = failureOf(t, (await collect(a, submitRequest())).error);
  t.is(failure.kind, K.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.regex(failure.message, /HTTP 404: The model `not-served` does not exist/);
});

test("an error inside the stream (vLLM's data: {error} then [DONE]) fails with ENGINE_ERROR after the tokens already sent", async (t) => {
  const f = await fake(t, { failAfter: { tokens: 3, message: "Engine loop has died" } });
  const a = await ready(t, f);
  const out = await collect(a, submitRequest({ maxTokens: 16 }));
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens.slice(0, 3));
  const failure = failureOf(t, out.error);
  t.is(failure.kind, K.WORKER_ERROR_KIND_ENGINE_ERROR);
  t.is(failure.message, "POST /v1/completions: engine error in the stream: Engine loop has died");
});

test("a hung stream times out with TIMEOUT and vLLM sees the connection close", async (t) => {
  const f = await fake(t, { hangAfter: 1 });
  const a = await ready(t, f, { http: { idleTimeoutMs: 150, retry: FAST_RETRY } });
  const out = await collect(a, submitRequest({ maxTokens: 16 }));
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens.slice(0, 1));
  t.is(failureOf(t, out.error).kind, K.WORKER_ERROR_KIND_TIMEOUT);
  t.true((await within(f.generations()[0]!.ended, 1_000, "close seen")).closedByClient);
});

test("cancel aborts vLLM's request (its connection closes) and resolves CANCELED", async (t) => {
  const f = await fake(t, { frameDelayMs: 100, tokens: Array.from({ length: 40 }, (_, i) => `w${i}`) });
  const a = await ready(t, f);
  const controller = new AbortController();
  const texts: string[] = [];
  const pending = a.generate(submitRequest({ maxTokens: 40 }), controller.signal, {
    started: () => {},
    tokens: (batch) => texts.push(...batch),
  });
  t.true(await eventually(() => texts.length >= 2, 2_000));
  t.is(f.openStreams(), 1);
  controller.abort();
  const result = await within(pending, 500, "generate settles after abort");
  t.is(result.stopReason, StopReason.STOP_REASON_CANCELED);
  const ended = await within(f.generations()[0]!.ended, 1_000, "close seen");
  t.true(ended.closedByClient);
  t.is(f.openStreams(), 0);
  t.true(texts.length < 40);
});

test("info and props: version from /version, ctx_max from max_model_len, slots 16 by default, no digest, load from /metrics", async (t) => {
  const f = await fake(t, { version: "0.6.3", maxModelLen: 8192, requestsWaiting: 3, kvCacheUsage: 0.42 });
  const a = await ready(t, f);
  t.deepEqual(a.info(), {
    engine: Engine.ENGINE_VLLM,
    adapter: "vllm",
    engineVersion: "0.6.3",
    modelRef: "hf:meta-llama/Llama-3.1-8B-Instruct",
    modelDigest: "",
    ctxMax: 8192,
    workloads: [Workload.WORKLOAD_COMPLETION],
    deviceMask: "",
    vramTotalBytes: 0,
    vramFreeBytes: 0,
    servesAnyModel: false,
    features: { seed: "true", cancel: "abort", api: "completions" },
  });
  t.is(a.slotsTotal(), 16);
  t.is(a.kvCacheUsageRatio(), 0.42);
  t.is(a.requestsWaiting(), 3);
  t.is(adapter(t, f, { slots: 64 }).slotsTotal(), 64);

  f.setBehaviour({ legacyKvMetric: true, kvCacheUsage: 0.9, requestsWaiting: 0 });
  t.true(await eventually(() => a.kvCacheUsageRatio() === 0.9, 2_000), "falls back to vllm:gpu_cache_usage_perc");
  t.is(a.requestsWaiting(), 0);
});

test("the running gauge follows open streams", async (t) => {
  const f = await fake(t, { hangAfter: 1 });
  const a = await ready(t, f);
  const controller = new AbortController();
  const pending = collect(a, submitRequest(), controller.signal);
  t.true(await eventually(() => a.engineLoad().running === 1, 2_000));
  controller.abort();
  await pending;
  t.true(await eventually(() => a.engineLoad().running === 0, 2_000));
});

test("engine restart: down while away, Ready again on the same port, and version re-read (a restart may be an upgrade)", async (t) => {
  let f = await fake(t, { version: "0.6.3" });
  const a = await ready(t, f);
  t.is(a.info().engineVersion, "0.6.3");
  await f.close();
  t.true(await eventually(() => !a.health().ready, 3_000));
  t.false(a.health().live);
  t.regex(a.health().lastError, /GET \/health: .*ECONNREFUSED/);
  t.is(a.kvCacheUsageRatio(), undefined, "no stale KV figure from a dead engine");

  f = await fake(t, { port: f.port, version: "0.6.4", maxModelLen: 16384 });
  t.true(await eventually(() => a.health().ready, 3_000));
  t.is(a.info().engineVersion, "0.6.4");
  t.is(a.info().ctxMax, 16384);
  t.deepEqual((await collect(a, submitRequest())).texts, FAKE_DEFAULTS.tokens);
});

test("/health 500 (engine dead) and 503 (loading) are not Ready, with vLLM's message", async (t) => {
  const f = await fake(t, { health: "loading" });
  const a = adapter(t, f);
  void a.start();
  t.true(await eventually(() => /GET \/health: HTTP 503: the model is still loading/.test(a.health().lastError), 2_000));
  t.false(a.health().ready);
  f.setBehaviour({ health: "ready" });
  t.true(await eventually(() => a.health().ready, 2_000));
  f.setBehaviour({ health: "down" });
  t.true(await eventually(() => /HTTP 500: engine dead/.test(a.health().lastError), 2_000));
  t.false(a.health().ready);
});

test("an engine model vLLM does not list keeps the adapter not Ready with a clear reason", async (t) => {
  const f = await fake(t, { models: ["served-a", "served-b"] });
  const a = adapter(t, f, { engineModel: "wanted" });
  void a.start();
  t.true(await eventually(() => /does not serve model "wanted".*served-a, served-b/.test(a.health().lastError), 2_000));
  t.false(a.health().ready);
});

test("an explicit engine model that vLLM lists is what requests carry", async (t) => {
  const f = await fake(t, { models: ["first", "second"] });
  const a = await ready(t, f, { engineModel: "second" });
  await collect(a, submitRequest({ maxTokens: 1 }));
  t.is(f.generations()[0]!.body.model, "second");
});

test("the API key never appears in errors: 401 from vLLM, key echoed in stream and body errors", async (t) => {
  const f = await fake(t, { apiKey: "the-right-key" });
  const a = adapter(t, f);
  const rejected = failureOf(t, (await collect(a, submitRequest())).error);
  t.is(rejected.kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  t.regex(rejected.message, /HTTP 401: Unauthorized/);

  const g = await fake(t, { failAfter: { tokens: 0, message: `bad header "Authorization: Bearer ${API_KEY}" (${API_KEY})` } });
  const b = await ready(t, g);
  const inStream = failureOf(t, (await collect(b, submitRequest())).error);
  g.setBehaviour({ failAfter: undefined, failBefore: { status: 422, message: `key ${API_KEY} is not allowed` } });
  const before = failureOf(t, (await collect(b, submitRequest())).error);
  for (const message of [rejected.message, inStream.message, before.message]) {
    t.false(message.includes(API_KEY), message);
    t.false(message.includes("9f8e7d6c5b4a"), message);
  }
  t.regex(inStream.message, /\[redacted\]/);
  t.regex(before.message, /key \[redacted\] is not allowed/);
});

test("prometheus text: labels with escapes, comments, NaN/Inf, timestamps, sums across labels", (t) => {
  const text = [
    "# HELP vllm:num_requests_running Number of requests in model execution batches.",
    "# TYPE vllm:num_requests_running gauge",
    'vllm:num_requests_running{model_name="m",engine="0"} 2.0',
    'vllm:num_requests_running{engine="1",model_name="m"} 3 1712345678000',
    'vllm:num_requests_waiting{model_name="we\\"ird, {name}\\\\ \\n"} 4e0',
    "vllm:kv_cache_usage_perc 0.5",
    'vllm:kv_cache_usage_perc{engine="1"} 0.75',
    "vllm:gpu_cache_usage_perc NaN",
    'vllm:e2e_request_latency_seconds_bucket{le="+Inf"} +Inf',
    "garbage line {",
    "",
  ].join("\n");
  const samples = parsePromText(text);
  t.is(samples.length, 7);
  t.deepEqual(samples[2], { name: "vllm:num_requests_waiting", labels: { model_name: 'we"ird, {name}\\ \n' }, value: 4 });
  t.true(Number.isNaN(samples[5]!.value));
  t.is(samples[6]!.value, Infinity);
  t.is(sumOf(samples, "vllm:num_requests_running"), 5);
  t.is(maxOf(samples, "vllm:kv_cache_usage_perc"), 0.75);
  t.is(maxOf(samples, "vllm:gpu_cache_usage_perc"), undefined, "NaN is no figure");
  t.deepEqual(vllmLoadOf(text), { running: 5, waiting: 4, kvCacheUsage: 0.75 });
  t.deepEqual(vllmLoadOf('vllm:gpu_cache_usage_perc{model_name="m"} 0.125\n'), { kvCacheUsage: 0.125 });
  t.deepEqual(vllmLoadOf(""), {});
});
