import test, { type ExecutionContext } from "ava";
import { Engine, StopReason, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { maxOf, parsePromText, sumOf } from "../../../workers/http/prometheus-text.js";
import { createVllmAdapter, vllmLoadOf, type VllmAdapter, type VllmAdapterOptions } from "../../../workers/vllm/vllm-adapter.js";
import { FAKE_DEFAULTS, startFakeVllm, type FakeBehaviour, type FakeOpenAi, type FakeOptions } from "../../fakes/openai-fake.js";
import { adapterConformance, type AdapterSettings } from "./adapter-conformance.js";
import { collect, eventually, submitRequest, within, workerFailure } from "./helpers.js";

const API_KEY = "vllm-key-9f8e7d6c5b4a-SECRET";
const FAST_RETRY = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 };
const MODEL = "meta-llama/Llama-3.1-8B-Instruct";

type VllmFakeOptions = Omit<FakeOptions, "flavour">;

function options(url: string, s: AdapterSettings = {}): VllmAdapterOptions {
  return {
    baseUrl: url,
    modelRef: `hf:${MODEL}`,
    apiKey: s.apiKey ?? API_KEY,
    pollIntervalMs: 20,
    slots: s.slots,
    http: { idleTimeoutMs: s.idleTimeoutMs ?? 2_000, retry: FAST_RETRY },
  };
}

const ALL_SAMPLING = "temperature,top_p,top_k,min_p,repeat_penalty,presence_penalty,frequency_penalty,stop,logit_bias,json_schema";
const MESSAGES = [
  { role: "system", content: "be brief" },
  { role: "user", content: "hi" },
];

const startFake = (opts: VllmFakeOptions = {}): Promise<FakeOpenAi> => startFakeVllm({ apiKey: API_KEY, models: [MODEL], ...opts });

adapterConformance<VllmAdapter, VllmFakeOptions, Partial<FakeBehaviour>, FakeOpenAi>({
  startFake,
  createAdapter: (url, settings) => createVllmAdapter(options(url, settings)),
  streams: {
    request: { prompt: "the quick brown fox", maxTokens: 16, seed: 7 },
    tokens: FAKE_DEFAULTS.tokens,
    started: 0,
    tokensIn: 4,
    engineDecodeTime: false,
    engineRequest: {
      path: "/v1/completions",
      // Under the served model name, learned from /v1/models.
      body: { model: MODEL, prompt: "the quick brown fox", max_tokens: 16, stream: true, stream_options: { include_usage: true }, seed: 7 },
      authorization: `Bearer ${API_KEY}`,
    },
  },
  // vLLM puts finish_reason "length" on the last token's chunk.
  maxTokens: { maxTokens: 4, tokens: FAKE_DEFAULTS.tokens.slice(0, 4) },
  split: {
    tokens: ["🦙", " naïve", " 中文字", "\u00e9", " ok"],
    sizes: [1, 2, 5],
    fake: (tokens, splitBytes) => ({ tokens, splitBytes }),
    request: { maxTokens: 16 },
  },
  oneChunk: { fake: { coalesce: true }, request: { maxTokens: 16 }, tokens: FAKE_DEFAULTS.tokens, started: 0 },
  preStreamErrors: [
    // vLLM's flat error body.
    {
      behaviour: {
        failBefore: { status: 400, message: "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens." },
      },
      kind: K.WORKER_ERROR_KIND_INVALID_REQUEST,
      retriable: false,
      message: "POST /v1/completions: HTTP 400: This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
    },
    {
      behaviour: { failBefore: undefined, health: "down" },
      kind: K.WORKER_ERROR_KIND_ENGINE_ERROR,
      retriable: false,
      message: /HTTP 500: engine dead/,
    },
  ],
  // vLLM's data: {error} then [DONE].
  inStreamError: {
    fake: { failAfter: { tokens: 3, message: "Engine loop has died" } },
    request: { maxTokens: 16 },
    tokens: FAKE_DEFAULTS.tokens.slice(0, 3),
    started: 0,
    message: "POST /v1/completions: engine error in the stream: Engine loop has died",
  },
  hang: { fake: { hangAfter: 1 }, tokens: FAKE_DEFAULTS.tokens.slice(0, 1), idleTimeoutMs: 150, withinMs: 2_000 },
  cancel: {
    fake: { frameDelayMs: 100, tokens: Array.from({ length: 40 }, (_, i) => `w${i}`) },
    total: 40,
    abortAfter: 2,
    settleWithinMs: 500,
    beforeAbort: (t, f) => {
      t.is(f.openStreams(), 1);
    },
    check: (t, f) => {
      t.is(f.openStreams(), 0);
    },
  },
  cancelEarly: { hold: { hangAfter: 0 }, startedWhileHeld: 0 },
  diesMidStream: { fake: { hangAfter: 3 }, tokens: FAKE_DEFAULTS.tokens.slice(0, 3) },
  restart: {
    before: { version: "0.6.3" },
    infoBefore: { engineVersion: "0.6.3" },
    after: { version: "0.6.4", maxModelLen: 16384 },
    lastError: /GET \/health: .*ECONNREFUSED/,
    info: { engineVersion: "0.6.4", ctxMax: 16384 },
    tokens: FAKE_DEFAULTS.tokens,
    whileDown: (t, a) => {
      t.is(a.kvCacheUsageRatio(), undefined, "no stale KV figure from a dead engine");
    },
  },
  loading: {
    fake: { health: "loading" },
    ready: { health: "ready" },
    live: false,
    lastError: /GET \/health: HTTP 503: the model is still loading/,
  },
  info: {
    mappings: [
      {
        fake: { version: "0.6.3", maxModelLen: 8192, requestsWaiting: 3, kvCacheUsage: 0.42 },
        info: {
          engine: Engine.ENGINE_VLLM,
          adapter: "vllm",
          engineVersion: "0.6.3",
          modelRef: `hf:${MODEL}`,
          modelDigest: "",
          ctxMax: 8192,
          workloads: [Workload.WORKLOAD_COMPLETION],
          deviceMask: "",
          vramTotalBytes: 0,
          vramFreeBytes: 0,
          servesAnyModel: false,
          features: { seed: "true", cancel: "abort", api: "completions", sampling: ALL_SAMPLING, chat: "chat-endpoint" },
        },
        slots: 16,
      },
    ],
    configuredSlots: [{ slots: 64, expect: 64 }],
    // Load from /metrics.
    check: async (t, a, f) => {
      t.is(a.kvCacheUsageRatio(), 0.42);
      t.is(a.requestsWaiting(), 3);
      f.setBehaviour({ legacyKvMetric: true, kvCacheUsage: 0.9, requestsWaiting: 0 });
      t.true(await eventually(() => a.kvCacheUsageRatio() === 0.9, 2_000), "falls back to vllm:gpu_cache_usage_perc");
      t.is(a.requestsWaiting(), 0);
    },
  },
  sampling: {
    features: { sampling: ALL_SAMPLING, chat: "chat-endpoint" },
    passes: {
      request: {
        maxTokens: 8,
        sampling: {
          temperature: 0.7,
          topP: 0.9,
          topK: 20,
          minP: 0.05,
          repeatPenalty: 1.1,
          presencePenalty: 0.5,
          frequencyPenalty: 0.25,
          stop: ["\n\n"],
          logitBias: { "15043": -100 },
          jsonSchema: '{"type":"object"}',
        },
      },
      // OpenAI's names, vLLM's extra ones (repetition_penalty for repeat_penalty), the schema through response_format.
      engineRequest: {
        path: "/v1/completions",
        body: {
          temperature: 0.7,
          top_p: 0.9,
          top_k: 20,
          min_p: 0.05,
          repetition_penalty: 1.1,
          presence_penalty: 0.5,
          frequency_penalty: 0.25,
          stop: ["\n\n"],
          logit_bias: { "15043": -100 },
          response_format: { type: "json_schema", json_schema: { name: "output", schema: { type: "object" }, strict: true } },
        },
      },
    },
    refused: [
      { request: { sampling: { jsonSchema: "not json" } }, message: /sampling\.json_schema is not JSON/ },
      { request: { sampling: { logitBias: { "-1": 1 } } }, message: /logit_bias keys are token ids/ },
    ],
    // vLLM's stop_reason names the stop string that matched.
    stop: { request: { maxTokens: 16, sampling: { stop: [" 日本"] } }, text: "Hello, wörld" },
    chat: {
      request: { prompt: "", maxTokens: 16, messages: MESSAGES },
      tokens: FAKE_DEFAULTS.tokens,
      check: (t, f) => {
        const [req] = f.generations();
        t.is(req!.path, "/v1/chat/completions", "vLLM applies the model's chat template on its chat endpoint");
        t.deepEqual(req!.body.messages, MESSAGES);
      },
    },
  },
  apiKey: {
    key: API_KEY,
    fragment: "9f8e7d6c5b4a",
    fake: {},
    echoes: [
      { behaviour: { failAfter: { tokens: 0, message: `bad header "Authorization: Bearer ${API_KEY}" (${API_KEY})` } } },
      {
        behaviour: { failAfter: undefined, failBefore: { status: 422, message: `key ${API_KEY} is not allowed` } },
        message: /key \[redacted\] is not allowed/,
      },
    ],
    wrongKey: { fake: { apiKey: "the-right-key" }, message: /HTTP 401: Unauthorized/ },
  },
});

test("with stop strings sent, vLLM's stop_reason null says the model ended by itself: EOS, not STOP", async (t) => {
  const f = await fake(t, { tokens: ["a", "b"] });
  const a = createVllmAdapter(options(f.url));
  t.teardown(() => a.stop());
  await within(a.start(), 3_000, "adapter ready");
  const out = await collect(a, submitRequest({ maxTokens: 16, sampling: { stop: ["never"] } }));
  t.deepEqual(out.texts, ["a", "b"]);
  t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS);
});

async function fake(t: ExecutionContext, opts: VllmFakeOptions = {}): Promise<FakeOpenAi> {
  const f = await startFake(opts);
  t.teardown(() => f.close());
  return f;
}

function adapter(t: ExecutionContext, f: { url: string }, opts: Partial<VllmAdapterOptions> = {}): VllmAdapter {
  const a = createVllmAdapter({ ...options(f.url), ...opts });
  t.teardown(() => a.stop());
  return a;
}

async function ready(t: ExecutionContext, f: FakeOpenAi, opts: Partial<VllmAdapterOptions> = {}): Promise<VllmAdapter> {
  const a = adapter(t, f, opts);
  await within(a.start(), 3_000, "adapter ready");
  return a;
}

test("api: chat streams delta contents from /v1/chat/completions", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f, { api: "chat" });
  const out = await collect(a, submitRequest({ prompt: "hi there", maxTokens: 16 }));
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens);
  t.deepEqual(out.result, { stopReason: StopReason.STOP_REASON_EOS, tokensIn: 2 });
  t.deepEqual(f.generations()[0]!.body.messages, [{ role: "user", content: "hi there" }]);
});

test("a request for a model vLLM does not serve is INVALID_REQUEST with vLLM's 404 message", async (t) => {
  const f = await fake(t);
  // Generating before the first probe identified the served model: the engine model is what gets sent.
  const a = adapter(t, f, { engineModel: "not-served" });
  const failure = workerFailure(t, (await collect(a, submitRequest())).error);
  t.is(failure.kind, K.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.regex(failure.message, /HTTP 404: The model `not-served` does not exist/);
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

// The 503 (loading) half is the table's loading case.
test("/health 500 (engine dead) is not Ready, with vLLM's message", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f);
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
