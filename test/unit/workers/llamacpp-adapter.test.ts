import test, { type ExecutionContext } from "ava";
import { Engine, StopReason, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K, type WorkerHealth } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure } from "../../../workers/engine-adapter.js";
import { completionBody, engineSeed, idleSlotsOf, propsOf, tokenTexts } from "../../../workers/llamacpp/llamacpp-api.js";
import {
  createLlamaCppAdapter,
  type HttpEngineOptions,
  type LlamaCppAdapter,
  type LlamaCppTuning,
} from "../../../workers/llamacpp/llamacpp-adapter.js";
import { parsePromText as parsePrometheusText, sampleValue } from "../../../workers/http/prometheus-text.js";
import { startFakeLlamaCpp, type FakeLlamaCpp, type FakeLlamaCppOptions } from "../../fakes/llamacpp-fake.js";
import { collect, eventually, submitRequest, type Collected } from "./helpers.js";

const API_KEY = "sk-llama-very-secret-123";
const FAST: LlamaCppTuning = { retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 }, probeTimeoutMs: 5_000, failureThreshold: 2 };

async function fake(t: ExecutionContext, opts: FakeLlamaCppOptions = {}): Promise<FakeLlamaCpp> {
  const f = await startFakeLlamaCpp(opts);
  t.teardown(() => f.close());
  return f;
}

function adapter(t: ExecutionContext, engine: FakeLlamaCpp | string, opts: Partial<HttpEngineOptions> = {}, tuning: LlamaCppTuning = {}): LlamaCppAdapter {
  const url = typeof engine === "string" ? engine : engine.url;
  const a = createLlamaCppAdapter({ baseUrl: url, modelRef: "hf:tiny/llama", pollIntervalMs: 25, ...opts }, { ...FAST, ...tuning });
  t.teardown(() => a.stop());
  return a;
}

async function ready(t: ExecutionContext, opts: FakeLlamaCppOptions = {}, adapterOpts: Partial<HttpEngineOptions> = {}, tuning: LlamaCppTuning = {}) {
  const engine = await fake(t, opts);
  const a = adapter(t, engine, adapterOpts, tuning);
  await a.start();
  return { engine, a };
}

function failureOf(t: ExecutionContext, out: Collected): WorkerFailure {
  t.true(out.error instanceof WorkerFailure, `expected a WorkerFailure, got ${String(out.error)}`);
  return out.error as WorkerFailure;
}

test("streams the engine's tokens, then its prompt count, stop reason and decode time", async (t) => {
  const { engine, a } = await ready(t);
  const out = await collect(a, submitRequest({ prompt: "tell me a story", maxTokens: 16, seed: 42 }));
  t.is(out.error, undefined);
  t.deepEqual(out.texts, engine.behaviour().tokens);
  t.is(out.started, 4, "started with tokens_evaluated of the first frame");
  t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS);
  t.is(out.result?.tokensIn, 4);
  t.is(typeof out.result?.decodeTimeMs, "number");
  t.true(out.batches.every((b) => b.length > 0));
  t.deepEqual(engine.generations()[0]?.body, { prompt: "tell me a story", n_predict: 16, stream: true, cache_prompt: true, seed: 42 });
});

test("max_tokens becomes n_predict, and stop_type limit is MAX_TOKENS; word is STOP_WORD", async (t) => {
  const { engine, a } = await ready(t);
  const limited = await collect(a, submitRequest({ maxTokens: 3 }));
  t.is(limited.texts.length, 3);
  t.is(limited.result?.stopReason, StopReason.STOP_REASON_MAX_TOKENS);
  engine.setBehaviour({ stopType: "word" });
  const worded = await collect(a, submitRequest({ maxTokens: 100 }));
  t.is(worded.result?.stopReason, StopReason.STOP_REASON_STOP_WORD);
});

test("frames split across socket chunks, inside UTF-8 characters, arrive whole and in order", async (t) => {
  const tokens = ["Grüße", " 世界", " 🦙🦙", " naïve", " ✓", "\n", "end"];
  const { a } = await ready(t, { tokens, chunkBytes: 3, splitDelayMs: 1 });
  const out = await collect(a, submitRequest({ maxTokens: 50 }));
  t.is(out.error, undefined);
  t.deepEqual(out.texts, tokens);
  t.true(out.batches.length > 1, "the pieces did arrive as separate chunks");
  t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS);
});

test("tokens are handed over in batches: one sink call per socket chunk, never per character", async (t) => {
  const tokens = Array.from({ length: 40 }, (_, i) => ` t${i}`);
  const { a } = await ready(t, { tokens });
  const out = await collect(a, submitRequest({ maxTokens: 100 }));
  t.deepEqual(out.texts, tokens);
  t.true(out.batches.length <= tokens.length);
  t.true(out.batches.every((b) => b.length > 0));
});

test("an error before the stream fails with the mapped kind and the engine's message, nothing started", async (t) => {
  const { engine, a } = await ready(t, { failBefore: { status: 400, message: "the request exceeds the available context size" } });
  const out = await collect(a, submitRequest());
  const err = failureOf(t, out);
  t.is(err.kind, K.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.false(err.retriable);
  t.regex(err.message, /POST \/completion: HTTP 400: the request exceeds the available context size/);
  t.is(out.started, undefined);
  t.deepEqual(out.texts, []);

  engine.setBehaviour({ failBefore: { status: 503, message: "Loading model" } });
  const busy = failureOf(t, await collect(a, submitRequest()));
  t.is(busy.kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  t.true(busy.retriable);
});

test("an error inside the stream fails ENGINE_ERROR after the tokens already delivered", async (t) => {
  const { engine, a } = await ready(t, { failAfter: { tokens: 3, message: "llama_decode failed: out of memory" } });
  const out = await collect(a, submitRequest({ maxTokens: 16 }));
  const err = failureOf(t, out);
  t.is(err.kind, K.WORKER_ERROR_KIND_ENGINE_ERROR);
  t.regex(err.message, /llama_decode failed: out of memory/);
  t.deepEqual(out.texts, engine.behaviour().tokens.slice(0, 3));
  t.is(out.started, 4);
});

test("an engine silent mid-stream fails TIMEOUT after the idle timeout and its request is closed", async (t) => {
  const { engine, a } = await ready(t, { hangAfter: 2 }, {}, { idleTimeoutMs: 150 });
  const t0 = Date.now();
  const out = await collect(a, submitRequest({ maxTokens: 16 }));
  t.is(failureOf(t, out).kind, K.WORKER_ERROR_KIND_TIMEOUT);
  t.true(Date.now() - t0 < 5_000, "the configured idle timeout, not the 60 s default");
  t.is(out.texts.length, 2);
  t.true(await eventually(() => engine.generations()[0]?.closedByClient === true));
});

test("cancel closes the engine's request and resolves CANCELED promptly", async (t) => {
  const { engine, a } = await ready(t, { frameDelayMs: 3_000 });
  const controller = new AbortController();
  const out: Collected = { batches: [], texts: [] };
  let abortedAt = 0;
  const done = a.generate(submitRequest({ maxTokens: 16 }), controller.signal, {
    started: (n) => (out.started = n),
    tokens: (texts) => {
      out.texts.push(...texts);
      abortedAt = performance.now();
      controller.abort();
    },
  });
  const result = await done;
  t.true(performance.now() - abortedAt < 1_500, "settled without waiting for the engine's next frame");
  t.is(result.stopReason, StopReason.STOP_REASON_CANCELED);
  t.true(out.texts.length < engine.behaviour().tokens.length);
  t.true(await eventually(() => engine.generations()[0]?.closedByClient === true), "the engine saw the connection close");
  t.false(engine.generations()[0]?.finished);
});

test("cancel while the engine hangs resolves CANCELED, and an already aborted signal sends nothing", async (t) => {
  const { engine, a } = await ready(t, { hangAfter: 0 });
  const controller = new AbortController();
  const pending = collect(a, submitRequest(), controller.signal);
  await eventually(() => engine.generations().length === 1);
  controller.abort();
  const out = await pending;
  t.is(out.result?.stopReason, StopReason.STOP_REASON_CANCELED);
  t.true(await eventually(() => engine.generations()[0]?.closedByClient === true));

  const aborted = await collect(a, submitRequest(), AbortSignal.abort());
  t.is(aborted.result?.stopReason, StopReason.STOP_REASON_CANCELED);
  t.is(engine.generations().length, 1);
});

test("info and props: build_info, per-slot n_ctx, total_slots, free slots and the KV-cache gauge", async (t) => {
  const engine = await fake(t, { totalSlots: 4, ctx: 2048, buildInfo: "b4567-deadbee", kvCacheUsageRatio: 0.25 });
  const a = adapter(t, engine);
  const before = a.info();
  t.is(before.engineVersion, "");
  t.is(before.ctxMax, 0);
  t.is(a.slotsTotal(), 1, "unknown until /props answered");
  await a.start();
  const info = a.info();
  t.like(info, { engine: Engine.ENGINE_LLAMACPP, adapter: "llamacpp", engineVersion: "b4567-deadbee", modelRef: "hf:tiny/llama", modelDigest: "", ctxMax: 2048, servesAnyModel: false, deviceMask: "" });
  t.deepEqual(info.workloads, [Workload.WORKLOAD_COMPLETION]);
  t.deepEqual(info.features, { seed: "true", cancel: "abort", cache_prompt: "true", determinism: "best_effort" });
  t.is(a.slotsTotal(), 4);
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
});

test("one slot means deterministic single-slot; a configured slot count wins over /props", async (t) => {
  const { a } = await ready(t, { totalSlots: 1 });
  t.is(a.info().features.determinism, "single-slot");
  const engine = await fake(t, { totalSlots: 8 });
  const b = adapter(t, engine, { slots: 2 });
  t.is(b.slotsTotal(), 2);
  await b.start();
  t.is(b.slotsTotal(), 2);
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

test("a loading engine is live but not ready, and start() resolves once it is ready", async (t) => {
  const engine = await fake(t, { health: "loading" });
  const a = adapter(t, engine);
  const seen: WorkerHealth[] = [];
  a.onHealthChange((h) => seen.push(h));
  let started = false;
  const starting = a.start().then(() => (started = true));
  t.true(await eventually(() => a.health().lastError.includes("Loading model")));
  t.like(a.health(), { live: true, ready: false });
  t.false(started);
  engine.setBehaviour({ health: "ready" });
  await starting;
  t.like(a.health(), { live: true, ready: true, lastError: "" });
  t.true(seen.some((h) => !h.ready) && seen.at(-1)?.ready === true);
});

test("an engine restart: health goes down while it is gone, then ready again and generations work", async (t) => {
  let engine = await startFakeLlamaCpp({ buildInfo: "b1-aaa" });
  const port = engine.port;
  t.teardown(() => engine.close());
  const a = adapter(t, engine);
  const seen: WorkerHealth[] = [];
  a.onHealthChange((h) => seen.push(h));
  await a.start();
  t.true(a.health().ready);

  await engine.close();
  t.true(await eventually(() => !a.health().ready), "not ready once the engine is gone");
  t.false(a.health().live);
  t.regex(a.health().lastError, /GET \/health/);
  const gone = await collect(a, submitRequest());
  t.is(failureOf(t, gone).kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);

  engine = await startFakeLlamaCpp({ port, buildInfo: "b2-bbb" });
  t.true(await eventually(() => a.health().ready), "ready again after the restart");
  t.true(await eventually(() => a.info().engineVersion === "b2-bbb"), "props re-read from the new engine");
  const out = await collect(a, submitRequest());
  t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS);
  const transitions = seen.map((h) => h.ready).filter((r, i, all) => i === 0 || all[i - 1] !== r);
  t.deepEqual(transitions, [true, false, true]);
});

test("a connection dropped mid-stream fails RESET after the tokens delivered", async (t) => {
  const engine = await startFakeLlamaCpp({ frameDelayMs: 30 });
  const a = adapter(t, engine);
  await a.start();
  const out: Collected = { batches: [], texts: [] };
  let closing: Promise<void> | undefined;
  const result = a
    .generate(submitRequest({ maxTokens: 16 }), new AbortController().signal, {
      started: () => {},
      tokens: (texts) => {
        out.texts.push(...texts);
        closing ??= engine.close();
      },
    })
    .catch((err: unknown) => err);
  const err = await result;
  await closing;
  t.true(err instanceof WorkerFailure);
  t.is((err as WorkerFailure).kind, K.WORKER_ERROR_KIND_RESET);
  t.true(out.texts.length >= 1);
});

test("the API key goes out as a bearer token and never appears in an error or a health message", async (t) => {
  const { engine, a } = await ready(t, { apiKey: API_KEY, echoAuthorization: true }, { apiKey: API_KEY });
  const ok = await collect(a, submitRequest());
  t.is(ok.error, undefined);
  t.is(engine.generations()[0]?.headers.authorization, `Bearer ${API_KEY}`);
  t.is(engine.requests.find((r) => r.path === "/props")?.headers.authorization, `Bearer ${API_KEY}`);

  engine.setBehaviour({ failBefore: { status: 500, message: "internal error" } });
  const before = failureOf(t, await collect(a, submitRequest()));
  engine.setBehaviour({ failBefore: undefined, failAfter: { tokens: 1, message: "decode failed" } });
  const inside = failureOf(t, await collect(a, submitRequest()));
  for (const err of [before, inside]) {
    t.false(err.message.includes(API_KEY), err.message);
    t.regex(err.message, /\[redacted\]/);
  }

  // A wrong key: /health is public and says ok, but /props refuses, so the replica is not ready.
  engine.setBehaviour({ failAfter: undefined, apiKey: "sk-other-key" });
  t.true(await eventually(() => !a.health().ready));
  t.regex(a.health().lastError, /401/);
  t.false(a.health().lastError.includes(API_KEY));
  const refused = failureOf(t, await collect(a, submitRequest()));
  t.is(refused.kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  t.false(refused.message.includes(API_KEY));
});

test("nothing listening: generate fails ENGINE_UNAVAILABLE (retriable) and health is down", async (t) => {
  const engine = await startFakeLlamaCpp();
  const url = engine.url;
  await engine.close();
  const a = adapter(t, url);
  void a.start();
  const out = await collect(a, submitRequest());
  const err = failureOf(t, out);
  t.is(err.kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  t.true(err.retriable);
  t.true(await eventually(() => a.health().lastError !== "not probed yet"));
  t.like(a.health(), { live: false, ready: false });
});

test("stop() reports stopped health and releases a pending start()", async (t) => {
  const engine = await fake(t, { health: "loading" });
  const a = adapter(t, engine);
  const seen: WorkerHealth[] = [];
  a.onHealthChange((h) => seen.push(h));
  const starting = a.start();
  await a.stop();
  await starting;
  t.deepEqual(a.health(), { live: false, ready: false, lastError: "stopped" });
  t.deepEqual(seen.at(-1), { live: false, ready: false, lastError: "stopped" });
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
  t.is(idleSlotsOf([{ id: 0, is_processing: true }, { id: 1, is_processing: false }, { id: 2, state: 0 }]), 2);
  t.is(idleSlotsOf({ error: {} }), undefined);
});

test("Prometheus text: unlabelled and labelled samples, escapes, special values, comments and junk", (t) => {
  const text = [
    "# HELP llamacpp:kv_cache_usage_ratio KV-cache usage.",
    "# TYPE llamacpp:kv_cache_usage_ratio gauge",
    "llamacpp:kv_cache_usage_ratio 0.63",
    'vllm:num_requests_running{model_name="m \\"q\\" \\\\ x",engine="0"} 3 1700000000000',
    "up +Inf",
    "down NaN",
    "broken{a=1} 2",
    "also broken 1 2 3",
    "",
  ].join("\n");
  const samples = parsePrometheusText(text);
  t.is(samples.length, 4);
  t.is(sampleValue(samples, "llamacpp:kv_cache_usage_ratio"), 0.63);
  t.deepEqual(samples[1], { name: "vllm:num_requests_running", labels: { model_name: 'm "q" \\ x', engine: "0" }, value: 3 });
  t.is(sampleValue(samples, "vllm:num_requests_running", { engine: "0" }), 3);
  t.is(sampleValue(samples, "vllm:num_requests_running", { engine: "1" }), undefined);
  t.is(sampleValue(samples, "up"), Infinity);
  t.true(Number.isNaN(sampleValue(samples, "down")));
});
