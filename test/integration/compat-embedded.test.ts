import test, { type ExecutionContext } from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { api, stream, taskBody } from "../support/http.js";
import { DemoModels } from "../support/demo-models.js";
import { RecordingFetch } from "../support/sdk-fetch.js";
import { TestSystem } from "../support/system.js";

// The official openai SDK against real llama.cpp inference (the embedded
// engine on generated random-weight models): completions, embeddings,
// rerank and the model list under configured names. Chat is tested against
// the mock (openai-compat.test.ts): the embedded adapter does not render
// chats with the model's template yet. Serial, so generations do not compete
// for the machine's cores.

const models = new DemoModels();
const gen = models.write("gen.gguf", { seed: 31, endsGenerations: false });
const emb = models.write("embed.gguf", { kind: "embedding", seed: 32 });
const rank = models.write("rank.gguf", { kind: "ranking", seed: 33 });
const configDir = mkdtempSync(join(tmpdir(), "llorch-compat-embedded-"));
const edgeConfig = join(configDir, "edge.yaml");
writeFileSync(
  edgeConfig,
  [
    "edge:",
    "  models:",
    `    demo: { engine: llamacpp, model_ref: 'file:${gen}' }`,
    `    embed: { engine: llamacpp, model_ref: 'file:${emb}', pool: emb }`,
    `    rank: { engine: llamacpp, model_ref: 'file:${rank}', ctx: 256 }`,
    "",
  ].join("\n"),
);

const embedded = (path: string) => ({ slots: 1, model: `file:${path}`, flags: { "ctx-max": "512", threads: "1" } });

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({
    edgeFlags: { config: edgeConfig },
    workers: [
      { pool: "gen", replica: "gen-1", ...embedded(gen) },
      { pool: "emb", replica: "emb-1", ...embedded(emb) },
      { pool: "rank", replica: "rank-1", ...embedded(rank) },
    ],
  });
});
test.after.always(async () => {
  await sys?.stop();
  models.remove();
  rmSync(configDir, { recursive: true, force: true });
});

const client = (recorder: RecordingFetch) =>
  new OpenAI({ baseURL: `${sys.edgeUrl}/v1`, apiKey: "k", fetch: recorder.fetch, maxRetries: 0 });

/** The native task's events for the same request. */
async function native(t: ExecutionContext, overrides: Record<string, unknown>) {
  const body = taskBody({ ctx: 512, ...overrides });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${String(body["task_id"])}/stream`);
  await s.done;
  return s.events;
}

test.serial("models.list: the configured names with the served model_refs, their engine, ctx and workloads", async (t) => {
  const recorder = new RecordingFetch();
  const listed = (await client(recorder).models.list()).data as unknown as Record<string, unknown>[];
  t.deepEqual(
    listed.slice(0, 3).map((m) => [m.id, m.model_ref, m.ctx_max]),
    [
      ["demo", `file:${gen}`, 512],
      ["embed", `file:${emb}`, 512],
      ["rank", `file:${rank}`, 256],
    ],
  );
  t.deepEqual(listed.find((m) => m.id === "embed")!.workloads, ["embedding"]);
  t.deepEqual(
    listed.slice(3).map((m) => m.id),
    [`file:${emb}`, `file:${gen}`, `file:${rank}`],
  );
  const caps = await api(t, sys.edgeUrl, "GET", "/v1/capabilities");
  t.deepEqual(
    caps.json.served_models.map((s: { model_ref: string; pool_ids: string[] }) => [s.model_ref, s.pool_ids]),
    [
      [`file:${emb}`, ["emb"]],
      [`file:${gen}`, ["gen"]],
      [`file:${rank}`, ["rank"]],
    ],
  );
  await recorder.conforms(t);
});

test.serial("completions, plain and streamed, are real llama.cpp tokens: the native task's text for the same seed", async (t) => {
  const recorder = new RecordingFetch();
  const openai = client(recorder);
  const events = await native(t, { model_ref: `file:${gen}`, prompt: "Llamas are", max_tokens: 24, seed: 11 });
  const text = events
    .filter((e) => e.event === "token")
    .map((e) => e.data.t as string)
    .join("");
  const plain = await openai.completions.create({ model: "demo", prompt: "Llamas are", max_tokens: 24, seed: 11 });
  t.is(plain.choices[0]!.text, text);
  t.like(plain.usage, { completion_tokens: 24, prompt_tokens: events.at(-1)!.data.tokens_in });
  let streamed = "";
  const chunks = await openai.completions.create({ model: "demo", prompt: "Llamas are", max_tokens: 24, seed: 11, stream: true });
  for await (const chunk of chunks) streamed += chunk.choices[0]?.text ?? "";
  t.is(streamed, text);
  await recorder.conforms(t);
});

test.serial("embeddings: the SDK's default base64 and plain floats both decode to the native task's vectors", async (t) => {
  const recorder = new RecordingFetch();
  const openai = client(recorder);
  const inputs = ["a llama", "the sky"];
  const vectors = (await native(t, { workload: "embedding", model_ref: `file:${emb}`, prompt: undefined, inputs, max_tokens: 1 }))
    .filter((e) => e.event === "embedding")
    .map((e) => e.data.embedding as number[]);
  const decoded = await openai.embeddings.create({ model: "embed", input: inputs });
  t.deepEqual(
    decoded.data.map((d) => d.embedding),
    vectors,
  );
  t.true(decoded.usage.prompt_tokens > 0);
  const floats = await openai.embeddings.create({ model: "embed", input: "a llama", encoding_format: "float" });
  t.deepEqual(floats.data[0]!.embedding, vectors[0]);
  t.is(floats.data[0]!.embedding.length, 64);
  await recorder.conforms(t);
});

test.serial("rerank: results best first, cut to top_n, each naming its document by index", async (t) => {
  const documents = ["a llama", "the stock market", "wool", "llamas graze"];
  const scores = (
    await native(t, { workload: "rerank", model_ref: `file:${rank}`, ctx: 256, prompt: "llamas", inputs: documents, max_tokens: 1 })
  )
    .filter((e) => e.event === "rerank")
    .map((e) => ({ index: e.data.i as number, relevance_score: e.data.relevance_score as number }));
  const best = [...scores].sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index);
  const r = await api(t, sys.edgeUrl, "POST", "/v1/rerank", {
    body: { model: "rank", query: "llamas", documents, top_n: 3, return_documents: true },
  });
  t.is(r.status, 200);
  t.deepEqual(
    r.json.results,
    best.slice(0, 3).map((s) => ({ ...s, document: { text: documents[s.index] } })),
  );
  t.regex(r.json.id, /^rerank-/);
  t.is(r.headers.get("x-task-id"), r.json.id.slice("rerank-".length));
  const all = await api(t, sys.edgeUrl, "POST", "/v1/rerank", { body: { model: "rank", query: "llamas", documents } });
  t.is(all.json.results.length, 4);
  const wrong = await api(t, sys.edgeUrl, "POST", "/v1/rerank", { body: { model: "demo", query: "llamas", documents } });
  t.is(wrong.status, 503, "the configured name's model serves no rerank workload");
  t.like(wrong.json.error, { code: "POOL_UNAVAILABLE", param: null });
});
