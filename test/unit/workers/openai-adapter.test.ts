import test, { type ExecutionContext } from "ava";
import { Engine, StopReason, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { createOpenAiAdapter, type OpenAiAdapter, type OpenAiAdapterOptions } from "../../../workers/openai/openai-adapter.js";
import { openAiRequest, parseStreamData, stopReasonOf } from "../../../workers/openai/openai-protocol.js";
import { FAKE_DEFAULTS, startFakeOpenAi, type FakeBehaviour, type FakeOpenAi, type FakeOptions } from "../../fakes/openai-fake.js";
import { adapterConformance, type AdapterSettings } from "./adapter-conformance.js";
import { collect, eventually, submitRequest, within, workerFailure } from "./helpers.js";

const API_KEY = "sk-test-0123456789abcdefSECRET";
const FAST_RETRY = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 };

function options(url: string, s: AdapterSettings = {}): OpenAiAdapterOptions {
  return {
    baseUrl: url,
    modelRef: "hf:acme/fake-model",
    engineModel: "fake-model",
    apiKey: s.apiKey ?? API_KEY,
    pollIntervalMs: 20,
    slots: s.slots,
    http: { idleTimeoutMs: s.idleTimeoutMs ?? 2_000, retry: FAST_RETRY },
  };
}

const startFake = (opts: FakeOptions = {}): Promise<FakeOpenAi> => startFakeOpenAi({ apiKey: API_KEY, ...opts });
/** OpenAI's own parameters: no top_k, min_p or repetition penalty; JSON schemas through chat's response_format. */
const OPENAI_SAMPLING = "temperature,top_p,presence_penalty,frequency_penalty,stop,logit_bias,json_schema";
const MESSAGES = [
  { role: "system", content: "be brief" },
  { role: "user", content: "hi" },
];

adapterConformance<OpenAiAdapter, FakeOptions, Partial<FakeBehaviour>, FakeOpenAi>({
  startFake,
  createAdapter: (url, settings) => createOpenAiAdapter(options(url, settings)),
  streams: {
    request: { prompt: "tell me a story", maxTokens: 16, seed: 42 },
    tokens: FAKE_DEFAULTS.tokens,
    // Prompt tokens are only known from usage at the end.
    started: 0,
    tokensIn: 4,
    engineDecodeTime: false,
    engineRequest: {
      path: "/v1/chat/completions",
      body: {
        model: "fake-model",
        messages: [{ role: "user", content: "tell me a story" }],
        max_tokens: 16,
        stream: true,
        stream_options: { include_usage: true },
        seed: 42,
      },
      authorization: `Bearer ${API_KEY}`,
    },
  },
  split: {
    tokens: ["ä", "日本語", " 🦙🦙", "é\u0301", "\n", '"quoted"', "data: not a field"],
    sizes: [1, 3, 7],
    fake: (tokens, splitBytes) => ({ tokens, splitBytes }),
    request: { maxTokens: 16 },
  },
  oneChunk: { fake: { coalesce: true }, request: { maxTokens: 16 }, tokens: FAKE_DEFAULTS.tokens, started: 0 },
  preStreamErrors: [
    {
      status: 400,
      message: "This model's maximum context length is 4096 tokens",
      kind: K.WORKER_ERROR_KIND_INVALID_REQUEST,
      retriable: false,
    },
    { status: 429, message: "Rate limit reached for requests", kind: K.WORKER_ERROR_KIND_CAPACITY, retriable: true },
    { status: 503, message: "The server is overloaded", kind: K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, retriable: true },
    { status: 500, message: "The server had an error", kind: K.WORKER_ERROR_KIND_ENGINE_ERROR, retriable: false },
  ].map(({ status, message, kind, retriable }) => ({
    behaviour: { failBefore: { status, message } },
    kind,
    retriable,
    message: `POST /v1/chat/completions: HTTP ${status}: ${message}`,
  })),
  inStreamError: {
    fake: { failAfter: { tokens: 2, message: "CUDA error: an illegal memory access" } },
    request: { maxTokens: 16 },
    tokens: FAKE_DEFAULTS.tokens.slice(0, 2),
    started: 0,
    message: /CUDA error: an illegal memory access/,
  },
  hang: { fake: { hangAfter: 2 }, tokens: FAKE_DEFAULTS.tokens.slice(0, 2), idleTimeoutMs: 150, withinMs: 2_000 },
  cancel: {
    fake: { frameDelayMs: 100, tokens: Array.from({ length: 50 }, (_, i) => `t${i} `) },
    total: 50,
    abortAfter: 1,
    settleWithinMs: 1_000,
    check: (t, _fake, out) => t.deepEqual(out.texts, ["t0 "]),
  },
  // The status line comes before the first token, and with it started().
  cancelEarly: { hold: { hangAfter: 0 }, startedWhileHeld: 0 },
  diesMidStream: { fake: { hangAfter: 3 }, tokens: FAKE_DEFAULTS.tokens.slice(0, 3) },
  restart: { after: {}, lastError: /ECONNREFUSED|connect/, tokens: FAKE_DEFAULTS.tokens },
  loading: { fake: { health: "loading" }, ready: { health: "ready" }, live: false, lastError: /HTTP 503: the model is still loading/ },
  info: {
    mappings: [
      {
        info: {
          engine: Engine.ENGINE_OPENAI,
          adapter: "openai",
          // The OpenAI API reports neither a server version nor a weights digest.
          engineVersion: "",
          modelRef: "hf:acme/fake-model",
          modelDigest: "",
          ctxMax: 0,
          workloads: [Workload.WORKLOAD_COMPLETION],
          deviceMask: "",
          vramTotalBytes: 0,
          vramFreeBytes: 0,
          servesAnyModel: false,
          features: { seed: "true", cancel: "abort", api: "chat", sampling: OPENAI_SAMPLING, chat: "chat-endpoint" },
        },
        slots: 4,
      },
    ],
    configuredSlots: [
      { slots: 12, expect: 12 },
      { slots: 0, expect: 4 },
    ],
    check: (t, a) => {
      t.is((a as { kvCacheUsageRatio?: unknown }).kvCacheUsageRatio, undefined);
    },
  },
  sampling: {
    features: { sampling: OPENAI_SAMPLING, chat: "chat-endpoint" },
    passes: {
      request: {
        maxTokens: 8,
        sampling: {
          temperature: 0.7,
          topP: 0.9,
          presencePenalty: 0.5,
          frequencyPenalty: 0.25,
          stop: ["\n\n"],
          logitBias: { "15043": -100 },
          jsonSchema: '{"type":"object"}',
        },
      },
      engineRequest: {
        path: "/v1/chat/completions",
        body: {
          temperature: 0.7,
          top_p: 0.9,
          presence_penalty: 0.5,
          frequency_penalty: 0.25,
          stop: ["\n\n"],
          logit_bias: { "15043": -100 },
          response_format: { type: "json_schema", json_schema: { name: "output", schema: { type: "object" }, strict: true } },
        },
      },
    },
    refused: [
      { request: { sampling: { topK: 40 } }, message: /OpenAI-compatible server cannot honour sampling\.top_k \(\/sampling\/top_k\)/ },
      { request: { sampling: { minP: 0.1, repeatPenalty: 1.1 } }, message: /sampling\.min_p, sampling\.repeat_penalty/ },
      { request: { sampling: { logitBias: { Hello: 1 } } }, message: /logit_bias keys are token ids/ },
    ],
    // finish_reason "stop" with stop strings sent: OpenAI does not say whether the model ended or a stop matched.
    stop: { request: { maxTokens: 16, sampling: { stop: [" 日本"] } }, text: "Hello, wörld" },
    chat: {
      request: { prompt: "", maxTokens: 16, messages: MESSAGES },
      tokens: FAKE_DEFAULTS.tokens,
      check: (t, f) => {
        const [req] = f.generations();
        t.is(req!.path, "/v1/chat/completions");
        t.deepEqual(req!.body.messages, MESSAGES, "the messages as they are: the server applies the model's template");
      },
    },
  },
  apiKey: {
    key: API_KEY,
    fragment: "0123456789abcdef",
    fake: {},
    echoes: [
      { behaviour: { failAfter: { tokens: 1, message: `upstream said: Authorization: Bearer ${API_KEY}; key=${API_KEY}` } } },
      { behaviour: { failAfter: undefined, failBefore: { status: 400, message: `bad request from key ${API_KEY}` } } },
    ],
    // This fake echoes the whole key it received in its 401 (a careless gateway).
    wrongKey: { fake: { apiKey: "sk-the-right-one" }, health: /401/, message: /HTTP 401: Incorrect API key provided/ },
  },
});

async function fake(t: ExecutionContext, opts: FakeOptions = {}): Promise<FakeOpenAi> {
  const f = await startFake(opts);
  t.teardown(() => f.close());
  return f;
}

function adapter(t: ExecutionContext, f: { url: string }, opts: Partial<OpenAiAdapterOptions> = {}): OpenAiAdapter {
  const a = createOpenAiAdapter({ ...options(f.url), ...opts });
  t.teardown(() => a.stop());
  return a;
}

/** An adapter that is Ready (start() resolved), failing the test instead of hanging when it never gets there. */
async function ready(t: ExecutionContext, f: FakeOpenAi, opts: Partial<OpenAiAdapterOptions> = {}): Promise<OpenAiAdapter> {
  const a = adapter(t, f, opts);
  await within(a.start(), 3_000, "adapter ready");
  return a;
}

test("max_tokens reached maps to MAX_TOKENS; api: completions uses /v1/completions with the prompt and no seed when the task has none", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f, { api: "completions" });
  const out = await collect(a, submitRequest({ prompt: "one two", maxTokens: 3 }));
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens.slice(0, 3));
  t.is(out.result?.stopReason, StopReason.STOP_REASON_MAX_TOKENS);
  t.is(out.result?.tokensIn, 2);
  const [req] = f.generations();
  t.is(req!.path, "/v1/completions");
  t.is(req!.body.prompt, "one two");
  t.false("seed" in req!.body);
  t.is(a.info().features.api, "completions");
});

test("a task with inputs goes to chat with one user message per input, whatever the api option", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f, { api: "completions" });
  const out = await collect(a, submitRequest({ prompt: "", inputs: ["first", "second one"], maxTokens: 2 }));
  t.is(out.error, undefined);
  const [req] = f.generations();
  t.is(req!.path, "/v1/chat/completions");
  t.deepEqual(req!.body.messages, [
    { role: "user", content: "first" },
    { role: "user", content: "second one" },
  ]);
});

test("with api: completions JSON schemas are refused (the completions API has no response_format); a chat still goes to chat", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f, { api: "completions" });
  t.is(a.info().features.sampling, "temperature,top_p,presence_penalty,frequency_penalty,stop,logit_bias");
  const refused = await collect(a, submitRequest({ sampling: { jsonSchema: "{}" } }));
  t.regex(workerFailure(t, refused.error).message, /cannot honour sampling\.json_schema/);
  t.is(f.generations().length, 0);
  await collect(a, submitRequest({ prompt: "", messages: MESSAGES, maxTokens: 2 }));
  t.is(f.generations()[0]!.path, "/v1/chat/completions");
});

test("protocol: finish_reason stop is the task's stop string only when it sent some and the server does not say otherwise", (t) => {
  t.is(stopReasonOf("stop"), StopReason.STOP_REASON_EOS);
  t.is(stopReasonOf("stop", true), StopReason.STOP_REASON_STOP);
  t.is(stopReasonOf("stop", true, false), StopReason.STOP_REASON_EOS, "vLLM's stop_reason null: the model ended");
  t.is(stopReasonOf("stop", true, true), StopReason.STOP_REASON_STOP);
  t.is(stopReasonOf("stop_sequence"), StopReason.STOP_REASON_STOP, "TGI's Messages API");
  t.is(stopReasonOf("length", true), StopReason.STOP_REASON_MAX_TOKENS);
  t.like(parseStreamData('{"choices":[{"index":0,"text":"","finish_reason":"stop","stop_reason":"END"}]}'), { matchedStop: true });
  t.like(parseStreamData('{"choices":[{"index":0,"text":"","finish_reason":"stop","stop_reason":null}]}'), { matchedStop: false });
});

test("a connection dropped mid-stream fails with RESET", async (t) => {
  const f = await fake(t, { dropAfter: 3 });
  const a = await ready(t, f);
  const out = await collect(a, submitRequest({ maxTokens: 16 }));
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens.slice(0, 3));
  t.is(workerFailure(t, out.error).kind, K.WORKER_ERROR_KIND_RESET);
});

test("not Ready, with a clear reason, while the engine does not list the model; Ready once it does", async (t) => {
  const f = await fake(t, { models: ["other-model", "third-model"] });
  const a = adapter(t, f);
  const started = a.start();
  t.true(await eventually(() => a.health().lastError !== "not probed yet" && a.health().lastError !== "not started", 2_000));
  t.false(a.health().ready);
  t.regex(a.health().lastError, /does not serve model "fake-model".*other-model, third-model/);
  f.setBehaviour({ models: ["other-model", "fake-model"] });
  await within(started, 2_000, "start resolves at Ready");
  t.true(a.health().ready);
});

test("ctx_max comes from the model card when the server lists max_model_len; a base URL ending in /v1 works", async (t) => {
  const f = await fake(t, { flavour: "vllm", maxModelLen: 32768 });
  const a = await ready(t, f, { baseUrl: `${f.url}/v1/` });
  t.is(a.info().ctxMax, 32768);
  const out = await collect(a, submitRequest({ maxTokens: 2 }));
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens.slice(0, 2));
});

test("protocol: stream frames of both APIs, usage-only chunks, errors, [DONE]", (t) => {
  t.deepEqual(parseStreamData('{"choices":[{"index":0,"text":"hi","finish_reason":null}]}'), { type: "chunk", text: "hi" });
  t.deepEqual(parseStreamData('{"choices":[{"index":0,"delta":{"content":"yo"},"finish_reason":"length"}]}'), {
    type: "chunk",
    text: "yo",
    finishReason: "length",
  });
  t.deepEqual(parseStreamData('{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}],"usage":null}'), {
    type: "chunk",
    text: "",
  });
  t.deepEqual(parseStreamData('{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}'), {
    type: "chunk",
    text: "",
    usage: { promptTokens: 7, completionTokens: 3 },
  });
  t.deepEqual(parseStreamData('{"error":{"message":"boom","type":"server_error"}}'), { type: "error", message: "boom" });
  t.deepEqual(parseStreamData('{"object":"error","message":"old vllm","type":"BadRequestError","code":400}'), {
    type: "error",
    message: "old vllm",
  });
  t.deepEqual(parseStreamData("[DONE]"), { type: "done" });
  t.throws(() => parseStreamData("not json"));
});

test("protocol: no max_tokens for a task without a limit", (t) => {
  const { body } = openAiRequest(submitRequest({ maxTokens: 0 }), "m", "completions");
  t.false("max_tokens" in body);
});
