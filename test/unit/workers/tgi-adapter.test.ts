import test, { type ExecutionContext } from "ava";
import { Engine, StopReason, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K, type WorkerHealth } from "../../../contracts/gen/llama_orch/v1/worker.js";
import type { EngineInfo } from "../../../workers/engine-adapter.js";
import type { HttpEngineOptions } from "../../../workers/http/engine-options.js";
import { TgiAdapter, type TgiTuning } from "../../../workers/tgi/tgi-adapter.js";
import { parseStreamEvent, statusOfErrorType, stopReasonOf } from "../../../workers/tgi/tgi-protocol.js";
import { TGI_FAKE_DEFAULTS, startFakeTgi, type TgiFake, type TgiFakeBehaviour, type TgiFakeOptions } from "../../fakes/tgi-fake.js";
import { adapterConformance } from "./adapter-conformance.js";
import { collect, eventually, submitRequest, within, workerFailure } from "./helpers.js";

/** What the fake streams by default, minus its special "</s>" (which the adapter must not pass on). */
const DEFAULT_TEXTS = TGI_FAKE_DEFAULTS.tokens;
// Generous probe timeout: under a loaded CI a probe that times out would read as "down", not as what the fake said.
const FAST: TgiTuning = { idleTimeoutMs: 5_000, probeTimeoutMs: 3_000, failureThreshold: 2 };
const API_KEY = "hf_SECRETsecret0123456789";
/** /generate_stream's parameters: no min_p, presence penalty or logit bias. */
const TGI_SAMPLING = "temperature,top_p,top_k,repeat_penalty,frequency_penalty,stop,json_schema";
const MESSAGES = [
  { role: "system", content: "be brief" },
  { role: "user", content: "hi" },
];

function adapterFor(url: string, opts: Partial<HttpEngineOptions> = {}, tuning: TgiTuning = {}): TgiAdapter {
  return new TgiAdapter({ baseUrl: url, modelRef: "hf:fake-org/tiny-llama", pollIntervalMs: 20, ...opts }, { ...FAST, ...tuning });
}

/** What the sidecar announces for the fake's default /info, with `changes`. */
function tgiInfo(changes: Partial<EngineInfo>): EngineInfo {
  return {
    engine: Engine.ENGINE_TGI,
    adapter: "tgi",
    engineVersion: "2.4.1",
    modelRef: "hf:fake-org/tiny-llama",
    // model_sha as the digest.
    modelDigest: "e985a63cdc139290c5f700ff1929f0b5942cced2",
    ctxMax: 4096,
    workloads: [Workload.WORKLOAD_COMPLETION],
    deviceMask: "",
    vramTotalBytes: 0,
    vramFreeBytes: 0,
    servesAnyModel: false,
    features: { seed: "true", cancel: "abort", sampling: TGI_SAMPLING, chat: "chat-endpoint" },
    ...changes,
  };
}

const preStreamErrors: [number, string, string, K][] = [
  [422, "Input validation error: `inputs` must have less than 4095 tokens. Given: 5000", "validation", K.WORKER_ERROR_KIND_INVALID_REQUEST],
  [424, "Request failed during generation: Server error: CUDA out of memory", "generation", K.WORKER_ERROR_KIND_ENGINE_ERROR],
  [429, "Model is overloaded", "overloaded", K.WORKER_ERROR_KIND_CAPACITY],
  [500, "Incomplete generation", "incomplete_generation", K.WORKER_ERROR_KIND_ENGINE_ERROR],
];

adapterConformance<TgiAdapter, TgiFakeOptions, Partial<TgiFakeBehaviour>, TgiFake>({
  startFake: startFakeTgi,
  createAdapter: (url, s = {}) =>
    adapterFor(url, { apiKey: s.apiKey, slots: s.slots }, s.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: s.idleTimeoutMs }),
  streams: {
    request: { prompt: "tell me a story", maxTokens: 50 },
    tokens: DEFAULT_TEXTS,
    // started() says 0, or the prompt count when the last frame arrives in the first socket chunk.
    // details.input_length: the fake counts prompt words.
    tokensIn: 4,
    // TGI's stream reports no timings: the sidecar measures.
    engineDecodeTime: false,
    check: (t, out) => {
      t.false(out.texts.includes("</s>"));
    },
  },
  maxTokens: { maxTokens: 4, tokens: DEFAULT_TEXTS.slice(0, 4) },
  split: {
    tokens: DEFAULT_TEXTS,
    sizes: [3, 7, 64],
    fake: (tokens, chunkBytes) => ({ tokens, chunkBytes }),
    request: { prompt: "split me", maxTokens: 50 },
    tokensIn: 2,
  },
  oneChunk: {
    fake: { burst: true },
    request: { prompt: "one two three four", maxTokens: 50 },
    tokens: DEFAULT_TEXTS,
    started: 4,
    tokensIn: 4,
  },
  preStreamErrors: preStreamErrors.map(([status, message, errorType, kind]) => ({
    behaviour: { failBefore: { status, error: message, errorType } },
    kind,
    retriable: kind === K.WORKER_ERROR_KIND_CAPACITY,
    message: `POST /generate_stream: HTTP ${status}: ${message}`,
  })),
  inStreamError: {
    fake: {
      failAfter: { tokens: 3, error: "Request failed during generation: Server error: CUDA out of memory", errorType: "generation" },
    },
    request: { maxTokens: 50 },
    tokens: DEFAULT_TEXTS.slice(0, 3),
    started: 0,
    message: /CUDA out of memory/,
  },
  hang: { fake: { hangAfter: 2 }, tokens: DEFAULT_TEXTS.slice(0, 2), idleTimeoutMs: 200, withinMs: 3_000 },
  cancel: { fake: { frameDelayMs: 30 }, total: DEFAULT_TEXTS.length, abortAfter: 2, settleWithinMs: 2_000 },
  // TGI has accepted a prompt only once it streams a token.
  cancelEarly: { hold: { hangAfter: 0 }, startedWhileHeld: undefined },
  diesMidStream: { fake: { hangAfter: 2 }, tokens: DEFAULT_TEXTS.slice(0, 2) },
  restart: {
    after: { info: { version: "2.4.2", model_sha: "0123456789abcdef0123456789abcdef01234567" } },
    lastError: /ECONNREFUSED/,
    // /info is read again.
    info: { engineVersion: "2.4.2", modelDigest: "0123456789abcdef0123456789abcdef01234567" },
    tokens: DEFAULT_TEXTS,
  },
  loading: { fake: { health: "loading" }, ready: { health: "ready" }, live: false, lastError: /HTTP 503: unhealthy/ },
  info: {
    mappings: [
      { info: tgiInfo({}), slots: 128 },
      // Without model_sha (a local model path) the digest stays empty.
      {
        fake: {
          info: {
            model_sha: null,
            max_concurrent_requests: 16,
            max_total_tokens: 2048,
            max_input_tokens: undefined,
            max_input_length: 1024,
            version: "1.4.5",
          },
        },
        info: tgiInfo({ engineVersion: "1.4.5", modelDigest: "", ctxMax: 2048 }),
        slots: 16,
      },
    ],
    // Before /info is read: TGI's default concurrency as slots.
    before: { info: { engineVersion: "", modelDigest: "", ctxMax: 0 }, slots: 128 },
    // --slots overrides max_concurrent_requests.
    configuredSlots: [{ slots: 4, expect: 4 }],
  },
  sampling: {
    features: { sampling: TGI_SAMPLING, chat: "chat-endpoint" },
    passes: {
      request: {
        maxTokens: 8,
        sampling: {
          temperature: 0.7,
          topP: 0.9,
          topK: 20,
          repeatPenalty: 1.1,
          frequencyPenalty: 0.25,
          stop: ["\n\n"],
          jsonSchema: '{"type":"object"}',
        },
      },
      // GenerateParameters' names; a temperature asks for sampling; the schema as a json grammar.
      engineRequest: {
        path: "/generate_stream",
        body: {
          parameters: {
            details: true,
            max_new_tokens: 8,
            temperature: 0.7,
            do_sample: true,
            top_p: 0.9,
            top_k: 20,
            repetition_penalty: 1.1,
            frequency_penalty: 0.25,
            stop: ["\n\n"],
            grammar: { type: "json", value: { type: "object" } },
          },
        },
      },
    },
    refused: [
      { request: { sampling: { minP: 0.1 } }, message: /TGI server cannot honour sampling\.min_p \(\/sampling\/min_p\)/ },
      {
        request: { sampling: { presencePenalty: 0.5, logitBias: { "1": 2 } } },
        message: /sampling\.presence_penalty, sampling\.logit_bias/,
      },
      // The Messages API has no top_k.
      {
        request: { prompt: "", messages: MESSAGES, sampling: { topK: 5 } },
        message: /TGI chat endpoint \(\/v1\/chat\/completions\) cannot honour sampling\.top_k/,
      },
      { request: { sampling: { jsonSchema: "[]" } }, message: /JSON Schema object/ },
    ],
    // TGI sends the stop sequence along; the adapter cuts it.
    stop: { request: { maxTokens: 50, sampling: { stop: [" — "] } }, text: "Hello, world" },
    chat: {
      request: { prompt: "", maxTokens: 50, seed: 3, messages: MESSAGES, sampling: { temperature: 0.5, stop: ["never"] } },
      tokens: DEFAULT_TEXTS,
      check: (t, f) => {
        const [req] = f.generations();
        t.is(req!.path, "/v1/chat/completions", "TGI renders the model's chat template on its Messages API");
        // model "tgi": any other name is taken for a LoRA adapter id.
        t.like(req!.body, {
          model: "tgi",
          messages: MESSAGES,
          max_tokens: 50,
          seed: 3,
          temperature: 0.5,
          stop: ["never"],
        });
      },
    },
  },
  apiKey: {
    key: API_KEY,
    fake: { apiKey: API_KEY },
    request: { maxTokens: 50 },
    echoes: [
      {
        behaviour: {
          failBefore: {
            status: 422,
            error: `Input validation error: bad header Authorization: Bearer ${API_KEY} (key ${API_KEY})`,
            errorType: "validation",
          },
        },
      },
      {
        behaviour: {
          failBefore: undefined,
          failAfter: { tokens: 1, error: `Request failed during generation: token ${API_KEY} rejected`, errorType: "generation" },
        },
        request: { maxTokens: 50 },
      },
    ],
    wrongKey: { fake: { apiKey: "hf_wrongKEY987654321" }, message: /HTTP 401/ },
  },
});

async function fake(t: ExecutionContext, opts: TgiFakeOptions = {}): Promise<TgiFake> {
  const f = await startFakeTgi(opts);
  t.teardown(() => f.close());
  return f;
}

async function adapter(
  t: ExecutionContext,
  f: TgiFake,
  opts: Partial<HttpEngineOptions> = {},
  tuning: TgiTuning = {},
): Promise<TgiAdapter> {
  const a = adapterFor(f.url, opts, tuning);
  t.teardown(() => a.stop());
  await within(a.start(), 3_000, "adapter ready");
  return a;
}

// Reaching max_tokens is the table's max_tokens case.
test("a stop sequence ends STOP_WORD", async (t) => {
  const f = await fake(t, { finish: "stop_sequence" });
  const a = await adapter(t, f);
  const stopped = await collect(a, submitRequest({ maxTokens: 50 }));
  t.deepEqual(stopped.texts, DEFAULT_TEXTS);
  t.is(stopped.result?.stopReason, StopReason.STOP_REASON_STOP_WORD);
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

test("started comes once, before the first tokens, with 0 when the prompt count only arrives at the end", async (t) => {
  const f = await fake(t, { frameDelayMs: 5 });
  const a = await adapter(t, f);
  const { calls, result } = await collect(a, submitRequest({ prompt: "a b", maxTokens: 50 }));
  t.is(calls[0], "started:0");
  t.is(calls.filter((c) => c.startsWith("started")).length, 1);
  t.true(calls.slice(1).every((c) => c.startsWith("tokens:")));
  t.is(result?.tokensIn, 2);
});

test("TGI before 2.0 (no input_length in StreamDetails) leaves tokensIn unknown", async (t) => {
  const f = await fake(t, { detailsStyle: "v1" });
  const a = await adapter(t, f);
  const out = await collect(a, submitRequest({ maxTokens: 50 }));
  t.deepEqual(out.texts, DEFAULT_TEXTS);
  t.is(out.started, 0);
  t.is(out.result?.tokensIn, undefined);
});

test("refusals TGI sends as the stream's first frame are classified by error_type, before started", async (t) => {
  const f = await fake(t);
  const a = await adapter(t, f);

  f.setBehaviour({ failAfter: { tokens: 0, error: "Model is overloaded", errorType: "overloaded" } });
  const overloaded = await collect(a, submitRequest());
  const capacity = workerFailure(t, overloaded.error);
  t.is(capacity.kind, K.WORKER_ERROR_KIND_CAPACITY);
  t.true(capacity.retriable);
  t.is(capacity.message, "POST /generate_stream: Model is overloaded");
  t.is(overloaded.started, undefined);

  f.setBehaviour({ failAfter: undefined });
  const empty = await collect(a, submitRequest({ prompt: "" }));
  const invalid = workerFailure(t, empty.error);
  t.is(invalid.kind, K.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.false(invalid.retriable);
  t.true(invalid.message.includes("`inputs` cannot be empty"), invalid.message);
  t.deepEqual(empty.texts, []);
});

test("an in-stream error arriving in the same chunk as tokens still delivers those tokens first", async (t) => {
  const f = await fake(t, { burst: true, failAfter: { tokens: 2 } });
  const a = await adapter(t, f);
  const out = await collect(a, submitRequest({ maxTokens: 50 }));
  t.deepEqual(out.batches, [DEFAULT_TEXTS.slice(0, 2)]);
  t.is(workerFailure(t, out.error).kind, K.WORKER_ERROR_KIND_ENGINE_ERROR);
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

test("consecutive generations reuse one keep-alive connection", async (t) => {
  const f = await fake(t);
  const a = await adapter(t, f);
  const before = f.connections();
  for (let i = 0; i < 3; i++) t.is((await collect(a, submitRequest({ maxTokens: 50 }))).result?.stopReason, StopReason.STOP_REASON_EOS);
  t.is(f.connections() - before, 1);
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

  t.deepEqual(
    parseStreamEvent('{"index":1,"token":{"id":5,"text":" hi","logprob":-0.1,"special":false},"generated_text":null,"details":null}'),
    { type: "token", text: " hi" },
  );
  t.deepEqual(
    parseStreamEvent(
      '{"index":2,"token":{"id":2,"text":"</s>","logprob":-0.1,"special":true},"generated_text":" hi","details":{"finish_reason":"eos_token","generated_tokens":2,"seed":null,"prefill":[{},{},{}]}}',
    ),
    { type: "token", text: undefined, end: { stopReason: StopReason.STOP_REASON_EOS, tokensIn: 3 } },
  );
  t.like(parseStreamEvent('{"error":"Model is overloaded","error_type":"overloaded"}'), {
    type: "error",
    kind: K.WORKER_ERROR_KIND_CAPACITY,
  });
  t.like(parseStreamEvent("not json"), { type: "error", kind: K.WORKER_ERROR_KIND_ENGINE_ERROR });
  t.like(parseStreamEvent('{"unexpected":true}'), { type: "error", kind: K.WORKER_ERROR_KIND_ENGINE_ERROR });
});
