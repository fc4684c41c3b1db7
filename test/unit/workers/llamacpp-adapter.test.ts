import test, { type ExecutionContext } from "ava";
import { Engine, StopReason, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { completionBody, engineSeed, idleSlotsOf, propsOf, stopReasonOf, tokenTexts } from "../../../workers/llamacpp/llamacpp-api.js";
import type { HttpEngineOptions } from "../../../workers/http/engine-options.js";
import { createLlamaCppAdapter, type LlamaCppAdapter, type LlamaCppTuning } from "../../../workers/llamacpp/llamacpp-adapter.js";
import {
  FAKE_LLAMACPP_DEFAULTS,
  startFakeLlamaCpp,
  type FakeLlamaCpp,
  type FakeLlamaCppBehaviour,
  type FakeLlamaCppOptions,
} from "../../fakes/llamacpp-fake.js";
import { adapterConformance } from "./adapter-conformance.js";
import { collect, eventually, submitRequest, within, workerFailure } from "./helpers.js";

const API_KEY = "sk-llama-very-secret-123";
const FAST: LlamaCppTuning = { retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 }, probeTimeoutMs: 5_000, failureThreshold: 2 };
const TOKENS = FAKE_LLAMACPP_DEFAULTS.tokens;
const ALL_SAMPLING = "temperature,top_p,top_k,min_p,repeat_penalty,presence_penalty,frequency_penalty,stop,logit_bias,json_schema";

function adapterFor(url: string, opts: Partial<HttpEngineOptions> = {}, tuning: LlamaCppTuning = {}): LlamaCppAdapter {
  return createLlamaCppAdapter({ baseUrl: url, modelRef: "hf:tiny/llama", pollIntervalMs: 25, ...opts }, { ...FAST, ...tuning });
}

adapterConformance<LlamaCppAdapter, FakeLlamaCppOptions, Partial<FakeLlamaCppBehaviour>, FakeLlamaCpp>({
  startFake: startFakeLlamaCpp,
  createAdapter: (url, s = {}) => adapterFor(url, { apiKey: s.apiKey, slots: s.slots }, { idleTimeoutMs: s.idleTimeoutMs }),
  streams: {
    request: { prompt: "tell me a story", maxTokens: 16, seed: 42 },
    tokens: TOKENS,
    // tokens_evaluated of the first frame.
    started: 4,
    tokensIn: 4,
    engineDecodeTime: true,
    // max_tokens becomes n_predict.
    engineRequest: { path: "/completion", body: { prompt: "tell me a story", n_predict: 16, stream: true, cache_prompt: true, seed: 42 } },
  },
  // stop_type "limit".
  maxTokens: { maxTokens: 3, tokens: TOKENS.slice(0, 3) },
  split: {
    tokens: ["Grüße", " 世界", " 🦙🦙", " naïve", " ✓", "\n", "end"],
    sizes: [3],
    fake: (tokens, chunkBytes) => ({ tokens, chunkBytes, splitDelayMs: 1 }),
    request: { maxTokens: 50 },
  },
  preStreamErrors: [
    {
      behaviour: { failBefore: { status: 400, message: "the request exceeds the available context size" } },
      kind: K.WORKER_ERROR_KIND_INVALID_REQUEST,
      retriable: false,
      message: /POST \/completion: HTTP 400: the request exceeds the available context size/,
    },
    {
      behaviour: { failBefore: { status: 503, message: "Loading model" } },
      kind: K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE,
      retriable: true,
      message: /HTTP 503: Loading model/,
    },
  ],
  inStreamError: {
    fake: { failAfter: { tokens: 3, message: "llama_decode failed: out of memory" } },
    request: { maxTokens: 16 },
    tokens: TOKENS.slice(0, 3),
    started: 4,
    message: /llama_decode failed: out of memory/,
  },
  hang: { fake: { hangAfter: 2 }, tokens: TOKENS.slice(0, 2), idleTimeoutMs: 150, withinMs: 5_000 },
  cancel: { fake: { frameDelayMs: 3_000 }, total: TOKENS.length, abortAfter: 1, settleWithinMs: 1_500 },
  cancelEarly: { hold: { hangAfter: 0 }, startedWhileHeld: undefined },
  diesMidStream: { fake: { hangAfter: 2 }, tokens: TOKENS.slice(0, 2) },
  restart: {
    before: { buildInfo: "b1-aaa" },
    infoBefore: { engineVersion: "b1-aaa" },
    after: { buildInfo: "b2-bbb" },
    lastError: /GET \/health/,
    // Props re-read from the new engine.
    info: { engineVersion: "b2-bbb" },
    tokens: TOKENS,
  },
  loading: { fake: { health: "loading" }, ready: { health: "ready" }, live: true, lastError: /Loading model/ },
  info: {
    mappings: [
      {
        fake: { totalSlots: 4, ctx: 2048, buildInfo: "b4567-deadbee", kvCacheUsageRatio: 0.25 },
        info: {
          engine: Engine.ENGINE_LLAMACPP,
          adapter: "llamacpp",
          // build_info and the per-slot n_ctx from /props; llama.cpp reports a model path, never a digest.
          engineVersion: "b4567-deadbee",
          modelRef: "hf:tiny/llama",
          modelDigest: "",
          ctxMax: 2048,
          workloads: [Workload.WORKLOAD_COMPLETION],
          deviceMask: "",
          vramTotalBytes: 0,
          vramFreeBytes: 0,
          servesAnyModel: false,
          features: {
            seed: "true",
            cancel: "abort",
            cache_prompt: "true",
            determinism: "best_effort",
            sampling: ALL_SAMPLING,
            chat: "template",
          },
        },
        slots: 4,
      },
    ],
    // Unknown until /props answered.
    before: { info: { engineVersion: "", ctxMax: 0 }, slots: 1 },
    configuredSlots: [{ fake: { totalSlots: 8 }, slots: 2, expect: 2 }],
    check: async (t, a, engine) => {
      t.is(a.slotsFree(), 4);
      t.true(await eventually(() => a.kvCacheUsageRatio() === 0.25), "llamacpp:kv_cache_usage_ratio from /metrics");
      t.is(a.requestsWaiting(), 0);
      t.is(a.engineProps()?.modelPath, engine.behaviour().modelPath);
      engine.setBehaviour({ hangAfter: 1 });
      const controller = new AbortController();
      const running = collect(a, submitRequest({ maxTokens: 5 }), controller.signal);
      t.true(await eventually(() => a.slotsFree() === 3, 5_000), "a busy slot in /slots");
      controller.abort();
      await running;
      t.true(await eventually(() => a.slotsFree() === 4, 5_000));
    },
  },
  sampling: {
    features: { sampling: ALL_SAMPLING, chat: "template" },
    passes: {
      request: {
        prompt: "p",
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
          logitBias: { "15043": -100, "7": 2 },
          jsonSchema: '{"type":"object"}',
        },
      },
      // The server's own names; logit_bias as [token, bias] pairs, the schema as an object.
      engineRequest: {
        path: "/completion",
        body: {
          temperature: 0.7,
          top_p: 0.9,
          top_k: 20,
          min_p: 0.05,
          repeat_penalty: 1.1,
          presence_penalty: 0.5,
          frequency_penalty: 0.25,
          stop: ["\n\n"],
          logit_bias: [
            [7, 2],
            [15043, -100],
          ],
          json_schema: { type: "object" },
        },
      },
    },
    refused: [
      { request: { sampling: { jsonSchema: "{nope" } }, message: /sampling\.json_schema is not JSON/ },
      { request: { sampling: { logitBias: { Hello: 1 } } }, message: /logit_bias keys are token ids/ },
    ],
    // stop_type "word": the server cut the stop string.
    stop: { request: { maxTokens: 100, sampling: { stop: [" a time"] } }, text: "Once upon" },
    chat: {
      request: {
        prompt: "",
        messages: [
          { role: "system", content: "be brief" },
          { role: "user", content: "hi" },
        ],
      },
      tokens: TOKENS,
      check: (t, engine) => {
        const rendered = engine.requests.filter((r) => r.path === "/apply-template");
        t.deepEqual(rendered[0]?.body, {
          messages: [
            { role: "system", content: "be brief" },
            { role: "user", content: "hi" },
          ],
        });
        // The template's prompt goes to the same /completion stream.
        t.like(engine.generations()[0]?.body, {
          prompt: "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
        });
      },
    },
  },
  apiKey: {
    key: API_KEY,
    fake: { apiKey: API_KEY, echoAuthorization: true },
    echoes: [
      { behaviour: { failBefore: { status: 500, message: "internal error" } } },
      { behaviour: { failBefore: undefined, failAfter: { tokens: 1, message: "decode failed" } } },
    ],
    // /health is public and says ok, but /props refuses, so the replica is not ready.
    wrongKey: { fake: { apiKey: "sk-other-key", echoAuthorization: true }, health: /401/, message: /HTTP 401: Invalid API Key/ },
  },
});

async function fake(t: ExecutionContext, opts: FakeLlamaCppOptions = {}): Promise<FakeLlamaCpp> {
  const f = await startFakeLlamaCpp(opts);
  t.teardown(() => f.close());
  return f;
}

async function ready(t: ExecutionContext, opts: FakeLlamaCppOptions = {}, adapterOpts: Partial<HttpEngineOptions> = {}) {
  const engine = await fake(t, opts);
  const a = adapterFor(engine.url, adapterOpts);
  t.teardown(() => a.stop());
  await within(a.start(), 3_000, "adapter ready");
  return { engine, a };
}

// Reaching max_tokens (stop_type "limit") is the table's max_tokens case.
test("stop_type word ends STOP_WORD", async (t) => {
  const { engine, a } = await ready(t);
  engine.setBehaviour({ stopType: "word" });
  const worded = await collect(a, submitRequest({ maxTokens: 100 }));
  t.is(worded.result?.stopReason, StopReason.STOP_REASON_STOP_WORD);
});

test("a task's own stop string ends STOP; a stopping word it did not ask for stays STOP_WORD", (t) => {
  const final = { stop: true, stop_type: "word" };
  t.is(stopReasonOf(final, 3, 16, true), StopReason.STOP_REASON_STOP);
  t.is(stopReasonOf(final, 3, 16), StopReason.STOP_REASON_STOP_WORD);
  t.is(stopReasonOf({ stop: true, stopped_word: true }, 3, 16, true), StopReason.STOP_REASON_STOP, "builds before stop_type");
});

test("a build without POST /apply-template fails a chat ENGINE_ERROR saying so, and starts no completion", async (t) => {
  const { engine, a } = await ready(t, { applyTemplate: false });
  const out = await collect(a, submitRequest({ prompt: "", messages: [{ role: "user", content: "hi" }] }));
  const failure = workerFailure(t, out.error);
  t.is(failure.kind, K.WORKER_ERROR_KIND_ENGINE_ERROR);
  t.false(failure.retriable);
  t.regex(failure.message, /POST \/apply-template: HTTP 404: .*has no POST \/apply-template, so it cannot render chats/);
  t.is(engine.generations().length, 0);
});

// A configured slot count winning over /props is the table's slots case.
test("one slot means deterministic single-slot", async (t) => {
  const { a } = await ready(t, { totalSlots: 1 });
  t.is(a.info().features.determinism, "single-slot");
});

test("tokens are handed over in batches: one sink call per socket chunk, never per character", async (t) => {
  const tokens = Array.from({ length: 40 }, (_, i) => ` t${i}`);
  const { a } = await ready(t, { tokens });
  const out = await collect(a, submitRequest({ maxTokens: 100 }));
  t.deepEqual(out.texts, tokens);
  t.true(out.batches.length <= tokens.length);
  t.true(out.batches.every((b) => b.length > 0));
});

test("without /slots and /metrics: free slots count our own generations, no KV-cache figure", async (t) => {
  const { engine, a } = await ready(t, { totalSlots: 2, slotsEndpoint: false, metrics: false, hangAfter: 1 });
  await eventually(() => engine.requests.filter((r) => r.path === "/slots").length >= 1);
  t.is(a.kvCacheUsageRatio(), undefined);
  t.is(a.slotsFree(), 2);
  const controller = new AbortController();
  const running = collect(a, submitRequest({ maxTokens: 5 }), controller.signal);
  t.true(await eventually(() => a.slotsFree() === 1));
  controller.abort();
  await running;
  t.is(a.slotsFree(), 2);
  // Disabled endpoints are not asked again on every poll.
  const asked = engine.requests.filter((r) => r.path === "/slots").length;
  await new Promise((r) => setTimeout(r, 120));
  t.is(engine.requests.filter((r) => r.path === "/slots").length, asked);
});

test("protocol mapping: seeds stay fixed uint32 seeds, multi-token characters count every token, props and slots", (t) => {
  t.is(engineSeed(42), 42);
  t.is(engineSeed(0xffffffff), 0, "LLAMA_DEFAULT_SEED means random, so it is folded");
  t.is(engineSeed(-1), 0xfffffffe);
  t.false("seed" in completionBody("p", 3, undefined));
  t.deepEqual(tokenTexts({ content: "é", tokens: [195, 169] }), ["é", ""]);
  t.deepEqual(tokenTexts({ content: "", tokens: [] }), []);
  t.deepEqual(tokenTexts({ content: "x" }), ["x"]);
  t.deepEqual(propsOf({ default_generation_settings: { n_ctx: 512 }, total_slots: 2, model_path: "/m.gguf", build_info: "b1-x" }), {
    ctxPerSlot: 512,
    totalSlots: 2,
    modelPath: "/m.gguf",
    buildInfo: "b1-x",
  });
  t.is(
    idleSlotsOf([
      { id: 0, is_processing: true },
      { id: 1, is_processing: false },
      { id: 2, state: 0 },
    ]),
    2,
  );
  t.is(idleSlotsOf({ error: {} }), undefined);
});
