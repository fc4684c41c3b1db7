import test, { type ExecutionContext } from "ava";
import { Engine, StopReason, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K } from "../../../contracts/gen/llama_orch/v1/worker.js";
import type { WorkerFailure } from "../../../workers/engine-adapter.js";
import { TritonAdapter, type TritonAdapterOptions } from "../../../workers/triton/triton-adapter.js";
import { generateBody, layoutOf, parseChunk, unwrapSseErrorMessage } from "../../../workers/triton/triton-protocol.js";
import { startFakeTriton, type TritonFake, type TritonFakeBehaviour, type TritonFakeOptions } from "../../fakes/triton-fake.js";
import { adapterConformance } from "./adapter-conformance.js";
import { collect, eventually, submitRequest, within, workerFailure } from "./helpers.js";

const API_KEY = "sk-triton-SECRET-0123456789";
const TOKENS = ["Hello", ",", " world", "!"];
const GENERATE = "POST /v2/models/ensemble/generate_stream";
/** What the current TensorRT-LLM ensemble declares inputs for, and stop strings (matched by the adapter); no chat. */
const ENSEMBLE_SAMPLING = "temperature,top_p,top_k,repeat_penalty,presence_penalty,frequency_penalty,stop,json_schema";

/** An adapter with test-sized timers. */
function adapterFor(url: string, opts: Partial<TritonAdapterOptions> = {}): TritonAdapter {
  return new TritonAdapter({
    baseUrl: url,
    modelRef: "hf:meta-llama/Llama-3.1-8B-Instruct",
    pollIntervalMs: 25,
    http: { idleTimeoutMs: 2_000, headersTimeoutMs: 2_000, connectTimeoutMs: 1_000, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } },
    health: { failureThreshold: 1, probeTimeoutMs: 1_000 },
    ...opts,
  });
}

const preStreamErrors = [
  {
    status: 400,
    error: "input length 9000 exceeds maximum input length 4096",
    kind: K.WORKER_ERROR_KIND_INVALID_REQUEST,
    retriable: false,
  },
  { status: 500, error: "Executor failed process requestId 3", kind: K.WORKER_ERROR_KIND_ENGINE_ERROR, retriable: false },
  { status: 503, error: "Server is shutting down", kind: K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, retriable: true },
];

adapterConformance<TritonAdapter, TritonFakeOptions, Partial<TritonFakeBehaviour>, TritonFake>({
  startFake: startFakeTriton,
  createAdapter: (url, s = {}) =>
    adapterFor(url, {
      apiKey: s.apiKey,
      slots: s.slots,
      ...(s.idleTimeoutMs === undefined ? {} : { http: { idleTimeoutMs: s.idleTimeoutMs } }),
    }),
  streams: {
    fake: { tokens: TOKENS, inputTokens: 7 },
    request: { prompt: "say hello", maxTokens: 16, seed: 42 },
    // One token per response's text_output; EOS when the engine stops short of max_tokens.
    tokens: TOKENS,
    started: 0,
    // num_input_tokens, asked for because the ensemble has return_num_input_tokens.
    tokensIn: 7,
    engineDecodeTime: false,
    engineRequest: {
      path: "/v2/models/ensemble/generate_stream",
      body: { text_input: "say hello", stream: true, max_tokens: 16, seed: 42, return_num_input_tokens: true },
    },
  },
  // A stream that delivers max_tokens responses.
  maxTokens: { fake: { tokens: ["a", "b", "c", "d", "e", "f"] }, maxTokens: 3, tokens: ["a", "b", "c"] },
  split: {
    tokens: ["é", "日本", "🦙", " naïve", "\n", 'ok "quoted"', "Ωmega"],
    sizes: [1, 3, 7],
    fake: (tokens, splitBytes) => ({ tokens, splitBytes }),
    request: { maxTokens: 100 },
  },
  // Plain and SSE-framed: Triton frames a first-response error as an event; it is unwrapped.
  preStreamErrors: preStreamErrors.flatMap(({ status, error, kind, retriable }) =>
    [false, true].map((sse) => ({
      behaviour: { failBefore: { status, error, sse } },
      kind,
      retriable,
      message: `${GENERATE}: HTTP ${status}: ${error}`,
    })),
  ),
  inStreamError: {
    fake: {
      tokens: ["one", " two", " three", " four"],
      failAfter: { tokens: 2, error: "Encountered an error in forwardAsync: CUDA out of memory" },
    },
    request: { maxTokens: 10 },
    tokens: ["one", " two"],
    started: 0,
    message: `${GENERATE}: Encountered an error in forwardAsync: CUDA out of memory`,
  },
  hang: { fake: { tokens: ["a", "b", "c", "d"], hangAfter: 2 }, tokens: ["a", "b"], idleTimeoutMs: 150, withinMs: 2_000 },
  cancel: {
    fake: { tokens: Array.from({ length: 1000 }, (_, i) => `w${i} `), frameDelayMs: 10 },
    total: 1000,
    abortAfter: 3,
    settleWithinMs: 2_000,
    // Triton sees the connection close and cancels the request.
    check: (t, f) => {
      t.true(f.generations()[0]!.tokensSent < 100);
    },
  },
  // Triton sends its status line with the first response, so nothing has started before it.
  cancelEarly: { hold: { hangAfter: 0 }, startedWhileHeld: undefined },
  diesMidStream: { fake: { hangAfter: 2 }, tokens: TOKENS.slice(0, 2) },
  restart: {
    before: { serverVersion: "2.50.0" },
    infoBefore: { engineVersion: "2.50.0" },
    after: { serverVersion: "2.51.0" },
    lastError: /ECONNREFUSED|ECONNRESET|socket hang up|closed/,
    // Metadata re-read after the restart.
    info: { engineVersion: "2.51.0" },
    tokens: TOKENS,
  },
  // A server that is up while its model loads is live but not ready.
  loading: {
    fake: { health: "loading" },
    ready: { health: "ready" },
    live: true,
    lastError: "loading: model ensemble is not ready: Model version not ready",
  },
  info: {
    mappings: [
      {
        fake: { serverVersion: "2.53.0", modelVersions: ["3", "2"] },
        info: {
          engine: Engine.ENGINE_TRITON,
          adapter: "triton",
          engineVersion: "2.53.0",
          modelRef: "hf:meta-llama/Llama-3.1-8B-Instruct",
          // Triton reports a model name and version numbers, nothing that identifies the weights.
          modelDigest: "",
          // Not in Triton's metadata: from the options, 0 (unknown) by default.
          ctxMax: 0,
          workloads: [Workload.WORKLOAD_COMPLETION],
          deviceMask: "",
          vramTotalBytes: 0,
          vramFreeBytes: 0,
          servesAnyModel: false,
          features: {
            seed: "true",
            seed_field: "seed",
            cancel: "abort",
            triton_model: "ensemble",
            triton_model_version: "3",
            triton_platform: "ensemble",
            sampling: ENSEMBLE_SAMPLING,
          },
        },
        slots: 8,
      },
    ],
    // Unknown until the server answered.
    before: { info: { engineVersion: "", features: { seed: "false" } }, slots: 8 },
    configuredSlots: [{ slots: 32, expect: 32 }],
  },
  sampling: {
    features: { sampling: ENSEMBLE_SAMPLING },
    passes: {
      request: {
        maxTokens: 8,
        sampling: {
          temperature: 0.7,
          topP: 0.9,
          topK: 20,
          repeatPenalty: 1.1,
          presencePenalty: 0.5,
          frequencyPenalty: 0.25,
          stop: ["\n\n"],
          jsonSchema: '{"type":"object"}',
        },
      },
      // The ensemble's input names, top level; guided decoding takes the schema as a string.
      engineRequest: {
        path: "/v2/models/ensemble/generate_stream",
        body: {
          temperature: 0.7,
          top_p: 0.9,
          top_k: 20,
          repetition_penalty: 1.1,
          presence_penalty: 0.5,
          frequency_penalty: 0.25,
          guided_decoding_guide_type: "json_schema",
          guided_decoding_guide: '{"type":"object"}',
        },
      },
      check: (t, body) => t.false("stop_words" in (body as object), "stop strings are matched by the adapter, not sent"),
    },
    refused: [
      { request: { sampling: { minP: 0.1 } }, message: /Triton model cannot honour sampling\.min_p \(\/sampling\/min_p\)/ },
      { request: { sampling: { logitBias: { "5": 1 } } }, message: /cannot honour sampling\.logit_bias/ },
      { request: { prompt: "", messages: [{ role: "user", content: "hi" }] }, message: /Triton model cannot render a chat \(\/messages\)/ },
    ],
    // Cut by the adapter, which closes the stream there.
    stop: { request: { maxTokens: 16, sampling: { stop: [" wor"] } }, text: "Hello," },
  },
  apiKey: {
    key: API_KEY,
    fake: { tokens: ["a", "b"] },
    echoes: [
      { behaviour: { failBefore: { status: 400, error: `bad header Authorization: Bearer ${API_KEY} (key ${API_KEY})` } } },
      { behaviour: { failBefore: { status: 500, error: `echo ${API_KEY}`, sse: true } } },
      { behaviour: { failBefore: undefined, failAfter: { tokens: 1, error: `in-stream ${API_KEY}` } } },
    ],
  },
});

async function fake(t: ExecutionContext, opts: TritonFakeOptions = {}): Promise<TritonFake> {
  const f = await startFakeTriton(opts);
  t.teardown(() => f.close());
  return f;
}

/** An adapter with test-sized timers; `start` waits until the fake's model is ready. */
async function adapter(t: ExecutionContext, f: TritonFake, opts: Partial<TritonAdapterOptions> = {}, start = true): Promise<TritonAdapter> {
  const a = adapterFor(f.url, opts);
  t.teardown(() => a.stop());
  if (start) await within(a.start(), 3_000, "adapter ready");
  return a;
}

async function failure(t: ExecutionContext, promise: Promise<{ error?: unknown }>): Promise<WorkerFailure> {
  return workerFailure(t, (await promise).error);
}

// A server that is up but still loading is the table's loading case.
test("a server that is not live is down, and says so", async (t) => {
  const f = await fake(t);
  const a = await adapter(t, f);
  f.setBehaviour({ health: "down" });
  t.true(await eventually(() => !a.health().live));
  t.is(a.health().lastError, "GET /v2/health/live: HTTP 400");
});

// The default ctx_max and a configured slot count are the table's info and slots cases.
test("ctx_max comes from the options", async (t) => {
  const f = await fake(t);
  const tuned = await adapter(t, f, { ctxMax: 8192, slots: 32 });
  t.is(tuned.info().ctxMax, 8192);
  t.is(tuned.slotsTotal(), 32);
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

test("sampling goes only where the model declares an input: an older ensemble takes temperature, top_k and top_p, the vLLM backend everything in sampling_parameters", async (t) => {
  const legacy = await fake(t, { layout: "trtllm-legacy" });
  const old = await adapter(t, legacy);
  t.is(old.info().features.sampling, "temperature,top_p,top_k,stop");
  const refused = await collect(old, submitRequest({ sampling: { repeatPenalty: 1.2 } }));
  t.regex(workerFailure(t, refused.error).message, /cannot honour sampling\.repeat_penalty/);
  t.is(legacy.generations().length, 0);

  const vllm = await fake(t, { layout: "vllm", modelName: "llama" });
  const a = await adapter(t, vllm, { engineModel: "llama" });
  t.is(a.info().features.sampling, "temperature,top_p,top_k,min_p,repeat_penalty,presence_penalty,frequency_penalty,stop,json_schema");
  const sampling = { temperature: 0.5, minP: 0.1, repeatPenalty: 1.2, jsonSchema: '{"type":"object"}' };
  await collect(a, submitRequest({ prompt: "p", maxTokens: 2, seed: 7, sampling }));
  t.deepEqual(JSON.parse(vllm.generations()[0]!.body!.sampling_parameters as string), {
    max_tokens: 2,
    seed: 7,
    temperature: 0.5,
    min_p: 0.1,
    repetition_penalty: 1.2,
    guided_decoding: '{"json":{"type":"object"}}',
  });
});

test("a stop string split over responses is cut where it begins, and text that only looked like one comes out at the end", async (t) => {
  const f = await fake(t, { tokens: ["one", " tw", "o", " three"] });
  const a = await adapter(t, f);
  const stopped = await collect(a, submitRequest({ maxTokens: 16, sampling: { stop: [" two"] } }));
  t.is(stopped.texts.join(""), "one");
  t.is(stopped.result?.stopReason, StopReason.STOP_REASON_STOP);
  const kept = await collect(a, submitRequest({ maxTokens: 16, sampling: { stop: [" twenty"] } }));
  t.is(kept.texts.join(""), "one two three");
  t.is(kept.result?.stopReason, StopReason.STOP_REASON_EOS);
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

test("an engine that never sends its first response fails TIMEOUT (headers come with the first token)", async (t) => {
  const f = await fake(t, { hangAfter: 0 });
  const a = await adapter(t, f, { http: { headersTimeoutMs: 150 } });
  const err = await failure(t, collect(a, submitRequest()));
  t.is(err.kind, K.WORKER_ERROR_KIND_TIMEOUT);
});

test("protocol: layouts, bodies, frames and SSE-framed error bodies", (t) => {
  const trt = layoutOf({ inputs: [{ name: "text_input" }, { name: "max_tokens" }, { name: "seed" }, { name: "random_seed" }] });
  t.is(trt.seedRoute, "seed", "seed wins where both exist");
  const bare = layoutOf({ inputs: [{ name: "text_input" }] });
  t.deepEqual(bare, { seedRoute: "seed", seedHonoured: false, askInputTokens: false, askFinishReason: false });
  t.deepEqual(generateBody({ prompt: "p", maxTokens: 0, seed: 0 }, bare), { text_input: "p", stream: true, seed: 0 });

  t.deepEqual(parseChunk('{"model_name":"m","model_version":"1","text_output":["a","b"],"num_input_tokens":[5]}'), {
    text: "a",
    inputTokens: 5,
  });
  t.deepEqual(parseChunk('{"error":"boom"}'), { error: "boom" });
  t.is(parseChunk("[1]"), undefined);
  t.is(parseChunk("not json"), undefined);

  t.is(unwrapSseErrorMessage('POST /p: HTTP 400: data: {"error":"too long"}'), "POST /p: HTTP 400: too long");
  t.is(unwrapSseErrorMessage("POST /p: HTTP 400: plain"), "POST /p: HTTP 400: plain");
  t.is(unwrapSseErrorMessage('POST /p: HTTP 400: data: {"error":"cut'), 'POST /p: HTTP 400: data: {"error":"cut');
});
