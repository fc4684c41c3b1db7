import test from "ava";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { StopReason, Workload } from "../../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../../../contracts/gen/llama_orch/v1/worker.js";
import { EmbeddedLlamaAdapter, type EmbeddedOptions } from "../../../../workers/llamacpp-embedded/embedded-adapter.js";
import { DemoModels } from "../../../support/demo-models.js";
import { collect, isWellFormedText, quietLogger, submitRequest, workerFailure } from "../helpers.js";

const models = new DemoModels();
const generation = models.write("gen.gguf", { seed: 11 });
const other = models.write("gen-2.gguf", { seed: 12 });
const broken = models.writeBroken("broken.gguf");
const embedding = models.write("embed.gguf", { kind: "embedding", seed: 13 });
const ranking = models.write("rank.gguf", { kind: "ranking", seed: 14 });
test.after.always(() => models.remove());

const logger = quietLogger;
const started: EmbeddedLlamaAdapter[] = [];
test.after.always(async () => Promise.all(started.map((a) => a.stop())));

async function adapter(path: string, options: Partial<EmbeddedOptions> = {}): Promise<EmbeddedLlamaAdapter> {
  const a = new EmbeddedLlamaAdapter(
    { modelRef: `file:${path}`, slots: 2, ctx: 256, threads: 1, gpu: "off", gpuLayers: 0, deviceMask: "", baseDir: "/", ...options },
    logger,
  );
  started.push(a);
  await a.start();
  return a;
}

const completion = (over: Partial<SubmitRequest> = {}): SubmitRequest =>
  submitRequest({ workload: Workload.WORKLOAD_COMPLETION, prompt: "tell me about llamas", maxTokens: 24, seed: 5, ...over });

test("Info reports the loaded model: its sha256, the per-slot context, what it serves, llama.cpp's release", async (t) => {
  const a = await adapter(generation);
  const info = a.info();
  t.is(info.modelDigest, `sha256:${createHash("sha256").update(readFileSync(generation)).digest("hex")}`);
  t.is(info.ctxMax, 256);
  t.deepEqual(info.workloads, [Workload.WORKLOAD_COMPLETION]);
  t.regex(info.engineVersion, /^llama\.cpp \S+ \(node-llama-cpp 3\.21\.1, cpu\)$/);
  t.deepEqual(a.health(), { live: true, ready: true, lastError: "" });
  t.is(a.slotsTotal(), 2);
});

test("a completion streams max_tokens tokens after started, with the tokenizer's prompt count", async (t) => {
  const a = await adapter(generation);
  const out = await collect(a, completion());
  t.is(out.error, undefined);
  t.true((out.started ?? 0) > 1, "BOS plus the prompt's tokens");
  t.is(out.texts.length, 24);
  t.is(out.result?.stopReason, StopReason.STOP_REASON_MAX_TOKENS);
  t.true(out.texts.every(isWellFormedText), "never half a character");
});

test("the same seed gives the same tokens, on either slot, even when both run at once", async (t) => {
  const a = await adapter(generation);
  const [x, y] = await Promise.all([collect(a, completion({ sessionId: "s1" })), collect(a, completion({ sessionId: "s2" }))]);
  const z = await collect(a, completion({ sessionId: "s1" }));
  t.deepEqual(x.texts, y.texts);
  t.deepEqual(z.texts, x.texts, "a warm slot (reused prompt cache) samples the same");
  const w = await collect(a, completion({ seed: 6 }));
  t.notDeepEqual(w.texts, x.texts);
});

test("an abort ends the generation within a token and the slot is free again at once", async (t) => {
  const a = await adapter(generation, { slots: 1, ctx: 4096 });
  const ctl = new AbortController();
  const out = await collect(a, completion({ maxTokens: 3000 }), ctl.signal, (o) => {
    if (o.texts.length >= 5) ctl.abort();
  });
  t.is(out.result?.stopReason, StopReason.STOP_REASON_CANCELED);
  t.true(out.texts.length < 3000);
  const next = await collect(a, completion({ maxTokens: 3 }));
  t.is(next.texts.length, 3, "the one slot served the next generation");
});

test("EvictSession clears the sequence that served the session, once", async (t) => {
  const a = await adapter(generation);
  await collect(a, completion({ sessionId: "sess-a" }));
  t.true((a.kvCacheUsageRatio() ?? 0) > 0);
  t.true(await a.evictSession("sess-a"));
  t.false(await a.evictSession("sess-a"));
  t.false(await a.evictSession("never-seen"));
});

test("a prompt that cannot fit the slot's context with max_tokens is refused as an invalid request", async (t) => {
  const a = await adapter(generation, { ctx: 64 });
  const out = await collect(a, completion({ maxTokens: 60 }));
  const f = workerFailure(t, out.error);
  t.is(f.kind, WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.regex(f.message, /exceed this slot's context of 64 tokens/);
});

test("LoadModel swaps to the new file; a broken file fails and the old model keeps serving", async (t) => {
  const a = await adapter(generation);
  const before = a.info().modelDigest;
  await a.loadModel(`file:${other}`);
  t.is(a.info().modelRef, `file:${other}`);
  t.not(a.info().modelDigest, before);
  const err = await t.throwsAsync(a.loadModel(`file:${broken}`));
  t.regex(err.message, /failed to load file:.*broken\.gguf: .*; still serving file:.*gen-2\.gguf/);
  t.is(a.info().modelRef, `file:${other}`);
  t.true(a.health().ready);
  t.regex(a.health().lastError, /failed to load/);
  t.is((await collect(a, completion({ maxTokens: 2 }))).texts.length, 2);
});

test("a model that is not a local file is refused with what the embedded engine loads", async (t) => {
  const a = await adapter(generation);
  const err = await t.throwsAsync(a.loadModel("hf:org/repo/model.gguf"));
  t.regex(err.message, /loads local GGUF files/);
});

test("an embedding model streams one vector per input, of the model's dimension, the same every time", async (t) => {
  const a = await adapter(embedding);
  t.deepEqual(a.info().workloads, [Workload.WORKLOAD_EMBEDDING]);
  const request = submitRequest({ workload: Workload.WORKLOAD_EMBEDDING, inputs: ["a llama", "the sky", "a llama"], maxTokens: 1 });
  const out = await collect(a, request);
  t.is(out.error, undefined);
  t.deepEqual(
    out.embeddings.map((e) => e.index),
    [0, 1, 2],
  );
  t.true(out.embeddings.every((e) => e.vector.length === 64));
  t.deepEqual(out.embeddings[2]!.vector, out.embeddings[0]!.vector);
  t.notDeepEqual(out.embeddings[1]!.vector, out.embeddings[0]!.vector);
  t.deepEqual((await collect(a, request)).embeddings, out.embeddings);
  t.true((out.started ?? 0) > 0);
});

test("a ranking model scores each document against the query, in document order", async (t) => {
  const a = await adapter(ranking);
  t.deepEqual(a.info().workloads, [Workload.WORKLOAD_RERANK]);
  const out = await collect(
    a,
    submitRequest({ workload: Workload.WORKLOAD_RERANK, prompt: "llama", inputs: ["a llama", "the sky"], maxTokens: 1 }),
  );
  t.is(out.error, undefined);
  t.deepEqual(
    out.scores.map((s) => s.index),
    [0, 1],
  );
  t.true(out.scores.every((s) => Number.isFinite(s.score)));
});

test("a workload the model does not serve is refused, naming the model's kind", async (t) => {
  const a = await adapter(generation);
  const f = workerFailure(
    t,
    (await collect(a, submitRequest({ workload: Workload.WORKLOAD_EMBEDDING, inputs: ["x"], maxTokens: 1 }))).error,
  );
  t.is(f.kind, WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.regex(f.message, /is a generation model; it does not run embedding tasks/);
});

test("a model that samples its end token stops there with eos, before max_tokens", async (t) => {
  const a = await adapter(generation, { ctx: 4096, slots: 1 });
  const out = await collect(a, completion({ maxTokens: 3000, seed: 3 }));
  t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS);
  t.true(out.texts.length < 3000);
});
