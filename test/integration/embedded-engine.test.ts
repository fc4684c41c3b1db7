import test, { type ExecutionContext } from "ava";
import { api, assertStreamConforms, stream, taskBody, type SseStream } from "../support/http.js";
import { DemoModels } from "../support/demo-models.js";
import { TestSystem } from "../support/system.js";

// Real inference: sidecars run llama.cpp in their own process (the embedded
// adapter) on random-weight models generated for this run, behind real core
// and edge processes. Serial, so that no test's generations compete with
// another's for the machine's cores.

const models = new DemoModels();
const gen = models.write("gen.gguf", { seed: 21, endsGenerations: false });
const single = models.write("single.gguf", { seed: 22, endsGenerations: false });
const reloadA = models.write("reload-a.gguf", { seed: 23, endsGenerations: false });
const reloadB = models.write("reload-b.gguf", { seed: 24, endsGenerations: false });
const broken = models.writeBroken("broken.gguf");
const emb = models.write("embed.gguf", { kind: "embedding", seed: 25 });
const rank = models.write("rank.gguf", { kind: "ranking", seed: 26 });

const embedded = (path: string, slots: number, ctx: number) => ({
  slots,
  model: `file:${path}`,
  flags: { "ctx-max": String(ctx), threads: "1" },
});

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({
    workers: [
      { pool: "gen", replica: "gen-1", ...embedded(gen, 2, 512) },
      { pool: "single", replica: "single-1", ...embedded(single, 1, 4096) },
      { pool: "reload", replica: "reload-1", ...embedded(reloadA, 1, 512) },
      { pool: "emb", replica: "emb-1", ...embedded(emb, 1, 512) },
      { pool: "rank", replica: "rank-1", ...embedded(rank, 1, 512) },
    ],
  });
});
test.after.always(async () => {
  await sys?.stop();
  models.remove();
});

async function run(t: ExecutionContext, body: Record<string, unknown>): Promise<SseStream> {
  const admitted = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
  t.is(admitted.status, 202, admitted.text);
  const path = `/v1/tasks/${String(body["task_id"])}/stream`;
  const s = await stream(sys.edgeUrl, path);
  await s.done;
  assertStreamConforms(t, path, s);
  return s;
}

const completion = (path: string, over: Record<string, unknown> = {}) =>
  taskBody({ model_ref: `file:${path}`, ctx: 512, max_tokens: 40, ...over });
const tokens = (s: SseStream) => s.events.filter((e) => e.event === "token");
const poolHealth = async (t: ExecutionContext, pool: string) => (await api(t, sys.edgeUrl, "GET", `/v1/pools/${pool}/health`)).json;

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test.serial("a completion streams real llama.cpp tokens with contiguous indices, then end", async (t) => {
  const s = await run(t, completion(gen));
  const ts = tokens(s);
  t.deepEqual(
    ts.map((e) => e.data.i),
    [...Array(40).keys()],
  );
  const end = s.events.at(-1)!;
  t.is(end.event, "end");
  t.like(end.data, { tokens_out: 40, stop_reason: "max_tokens" });
  t.true(end.data.tokens_in > 1);
});

test.serial("the same seed gives a byte-identical token stream; another seed another one", async (t) => {
  const texts = async (seed: number) => tokens(await run(t, completion(gen, { seed }))).map((e) => e.data.t as string);
  const a = await texts(99);
  t.deepEqual(await texts(99), a);
  t.notDeepEqual(await texts(100), a);
});

test.serial("random weights emit lone UTF-8 bytes, yet the client only ever receives valid UTF-8", async (t) => {
  const admitted = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: completion(gen, { max_tokens: 300, seed: 7 }) });
  const res = await fetch(`${sys.edgeUrl}/v1/tasks/${admitted.json.task_id}/stream`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes); // throws on any invalid sequence
  const frames = [...text.matchAll(/event: token\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!) as { t: string });
  t.is(frames.length, 300);
  // The model did produce bytes that are not whole characters: held back (empty texts) or replaced (U+FFFD).
  t.true(
    frames.some((f) => f.t === "" || f.t.includes("\uFFFD")),
    "this seed emits byte tokens mid-character",
  );
});

test.serial("two tasks run at once on the two slots of one sidecar", async (t) => {
  const bodies = [completion(gen, { max_tokens: 400, ctx: 512 }), completion(gen, { max_tokens: 400, ctx: 512 })];
  const streams = Promise.all(bodies.map((b) => run(t, b)));
  const busy = await until("both slots busy", async () => {
    const h = await poolHealth(t, "gen");
    return h.metrics.tasks_running === 2 ? h : undefined;
  });
  t.is(busy.metrics.slots_free, 0);
  for (const s of await streams) t.is(tokens(s).length, 400);
});

test.serial("a cancel frees the slot at once: the next task on the one-slot sidecar starts straight away", async (t) => {
  const long = completion(single, { ctx: 4096, max_tokens: 4000 });
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: long });
  const s = await stream(sys.edgeUrl, `/v1/tasks/${long["task_id"]}/stream`);
  await s.waitFor(3, "token");
  const cancel = await api(t, sys.edgeUrl, "POST", `/v1/tasks/${long["task_id"]}/cancel`);
  t.is(cancel.status, 204);
  await s.done;
  t.like(s.events.at(-1), { event: "end", data: { stop_reason: "canceled" } });
  await until("the slot back", async () => ((await poolHealth(t, "single")).metrics.slots_free === 1 ? true : undefined));
  const next = await run(t, completion(single, { ctx: 4096, max_tokens: 5 }));
  t.like(next.events[0], { event: "started", data: { queue_position: 0 } });
  t.is(tokens(next).length, 5);
});

test.serial("ctx above the per-slot context is refused before it is queued", async (t) => {
  const r = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: completion(gen, { ctx: 1024 }) });
  t.is(r.status, 400);
  t.is(r.json.code, "INVALID_PARAMS");
  t.regex(r.json.message, /512/);
  const caps = await api(t, sys.edgeUrl, "GET", "/v1/capabilities");
  const llama = caps.json.engines.find((e: { engine: string }) => e.engine === "llamacpp");
  t.deepEqual([...llama.supported_workloads].sort(), ["completion", "embedding", "rerank"]);
});

test.serial("an embedding task streams one vector per input, of the model's dimension, the same each time", async (t) => {
  const body = () =>
    taskBody({
      workload: "embedding",
      model_ref: `file:${emb}`,
      ctx: 512,
      prompt: undefined,
      inputs: ["a llama", "the sky"],
      max_tokens: 1,
    });
  const vectors = async () => (await run(t, body())).events.filter((e) => e.event === "embedding");
  const first = await vectors();
  t.deepEqual(
    first.map((e) => e.data.i),
    [0, 1],
  );
  t.true(first.every((e) => e.data.embedding.length === 64));
  t.deepEqual(
    (await vectors()).map((e) => e.data),
    first.map((e) => e.data),
  );
});

test.serial("a rerank task streams a relevance score per document, in document order, then end with tokens_in", async (t) => {
  const s = await run(
    t,
    taskBody({
      workload: "rerank",
      model_ref: `file:${rank}`,
      ctx: 512,
      prompt: "llamas",
      inputs: ["a llama", "the stock market", "wool"],
      max_tokens: 1,
    }),
  );
  const scores = s.events.filter((e) => e.event === "rerank");
  t.deepEqual(
    scores.map((e) => e.data.i),
    [0, 1, 2],
  );
  t.true(scores.every((e) => typeof e.data.relevance_score === "number"));
  t.like(s.events.at(-1), { event: "end", data: { tokens_out: 0 } });
  t.true(s.events.at(-1)!.data.tokens_in > 0);
});

test.serial("a workload no replica serves is refused with POOL_UNAVAILABLE saying so", async (t) => {
  const r = await api(t, sys.edgeUrl, "POST", "/v1/tasks", {
    body: taskBody({ workload: "embedding", model_ref: `file:${gen}`, ctx: 512, inputs: ["x"] }),
  });
  t.is(r.status, 503);
  t.is(r.json.code, "POOL_UNAVAILABLE");
  t.regex(r.json.message, /workload embedding/);
});

test.serial("a reload onto another model serves it; a reload onto a broken file rolls back to the model before", async (t) => {
  const reload = (ref: string) => api(t, sys.edgeUrl, "POST", "/v1/pools/reload/reload", { body: { new_model_ref: ref } });
  t.is((await reload(`file:${reloadB}`)).status, 202);
  const h = await until("the new model", async () => {
    const x = await poolHealth(t, "reload");
    return x.ready && x.metrics.model_ref === `file:${reloadB}` && x.metrics.reload_state === "idle" ? x : undefined;
  });
  t.is(h.metrics.last_reload_error, undefined);
  t.is(tokens(await run(t, completion(reloadB, { max_tokens: 3 }))).length, 3);

  t.is((await reload(`file:${broken}`)).status, 202);
  const failed = await until("the rollback", async () => {
    const x = await poolHealth(t, "reload");
    // Ready again once core has re-read the replica's Info after the engine came back.
    return x.metrics.reload_state === "idle" && x.metrics.last_reload_error && x.ready ? x : undefined;
  });
  t.is(failed.metrics.model_ref, `file:${reloadB}`);
  t.regex(failed.metrics.last_reload_error, /broken\.gguf/);
  t.is(tokens(await run(t, completion(reloadB, { max_tokens: 3 }))).length, 3, "the old model still serves");
});
