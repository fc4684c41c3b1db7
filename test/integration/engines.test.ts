import test, { type ExecutionContext } from "ava";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import { api, assertStreamConforms, stream, taskBody } from "../support/http.js";
import { TestSystem } from "../support/system.js";
import type { FakeRequest } from "../fakes/fake-http.js";
import { fakeRelevance, fakeVector, wordCount } from "../fakes/fake-pooling.js";
import { startFakeLlamaCpp } from "../fakes/llamacpp-fake.js";
import { startFakeOpenAi, startFakeVllm } from "../fakes/openai-fake.js";
import { startFakeTgi } from "../fakes/tgi-fake.js";
import { startFakeTriton } from "../fakes/triton-fake.js";

/** What this test needs of a fake engine; every fake in test/fakes/ has it. */
interface FakeEngine {
  url: string;
  setBehaviour(patch: { frameDelayMs: number }): void;
  generations(): FakeRequest[];
  close(): Promise<void>;
}

const ENGINES: { engine: string; engineModel?: string; tokens: string[]; start(tokens: string[]): Promise<FakeEngine> }[] = [
  { engine: "llamacpp", tokens: ["Hola", " señor", " 🦙", "!"], start: (tokens) => startFakeLlamaCpp({ tokens }) },
  { engine: "vllm", engineModel: "fake-model", tokens: ["Hello", ",", " wörld", " 日本"], start: (tokens) => startFakeVllm({ tokens }) },
  { engine: "openai", engineModel: "fake-model", tokens: ["Bonjour", " à", " tous"], start: (tokens) => startFakeOpenAi({ tokens }) },
  { engine: "tgi", tokens: ["Guten", " Tag", " naïve", " 🦙"], start: (tokens) => startFakeTgi({ tokens }) },
  { engine: "triton", engineModel: "ensemble", tokens: ["Ciao", " a", " tutti"], start: (tokens) => startFakeTriton({ tokens }) },
];

for (const spec of ENGINES) {
  test(`edge -> core -> sidecar -> ${spec.engine}: tokens stream end to end, and cancel closes the engine request`, async (t) => {
    const fake = await spec.start(spec.tokens);
    t.teardown(() => fake.close());
    /** Whether the most recent generation's connection was closed by the sidecar before it finished. */
    const lastClosedByClient = (): boolean => fake.generations().at(-1)!.closedByClient;
    const model = spec.engineModel ?? "hf:org/e2e";
    const sys = await TestSystem.start({
      workers: [
        {
          replica: `${spec.engine}-1`,
          engine: spec.engine,
          model,
          slots: 2,
          flags: { "engine-url": fake.url, "serves-any-model": "false", ...(spec.engineModel ? { "engine-model": spec.engineModel } : {}) },
        },
      ],
    });
    t.teardown(() => sys.stop());

    const body = taskBody({ engine: spec.engine, model_ref: model, max_tokens: 50, ctx: 1024, prompt: "say hello" });
    const admitted = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
    t.is(admitted.status, 202, admitted.text);
    const path = `/v1/tasks/${body.task_id}/stream`;
    const s = await stream(sys.edgeUrl, path);
    await s.done;
    assertStreamConforms(t, path, s);
    t.deepEqual(
      s.events.filter((e) => e.event === "token").map((e) => e.data.t),
      spec.tokens,
      "the engine's tokens, byte for byte",
    );
    t.is(s.events.at(-1)!.event, "end");
    const placed = s.events.find((e) => e.event === "metrics" && e.data.replica_id);
    t.is(placed?.data.replica_id, `${spec.engine}-1`);

    // Cancel mid-stream: the sidecar must close its request to the engine.
    fake.setBehaviour({ frameDelayMs: 300 });
    const slow = taskBody({ engine: spec.engine, model_ref: model, max_tokens: 50, ctx: 1024, prompt: "slowly" });
    t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: slow })).status, 202);
    const s2 = await stream(sys.edgeUrl, `/v1/tasks/${slow.task_id}/stream`);
    await s2.waitFor(1, "token");
    t.is((await api(t, sys.edgeUrl, "POST", `/v1/tasks/${slow.task_id}/cancel`)).status, 204);
    await s2.done;
    t.is(s2.events.at(-1)!.data.stop_reason, "canceled");
    for (let i = 0; i < 40 && !lastClosedByClient(); i++) await new Promise((r) => setTimeout(r, 50));
    t.true(lastClosedByClient(), "the engine saw its connection closed");
  });
}

const INPUTS = ["hola señor", "a 🦙 in the field", "fin"];
const QUERY = "where does the llama sleep";
const DOCUMENTS = ["in the barn", "the llama sleeps standing up", "grass", "where llamas sleep: the field"];
const DIMS = 5;

/**
 * Per engine, the replicas that serve embedding and rerank: llama.cpp runs
 * one server per workload (--embeddings, --reranking), vLLM one embedding
 * model that also reranks. Each replica's --workloads says what its engine
 * was started for.
 */
interface PooledReplica {
  id: string;
  model: string;
  workloads: string;
  engineModel?: string;
  start(): Promise<FakeEngine & { poolingRequests(): FakeRequest[] }>;
}

const POOLED: { engine: string; replicas: PooledReplica[] }[] = [
  {
    engine: "llamacpp",
    replicas: [
      {
        id: "llama-embed",
        model: "hf:org/embed",
        workloads: "embedding",
        start: () => startFakeLlamaCpp({ embeddings: true, embeddingDims: DIMS }),
      },
      { id: "llama-rerank", model: "hf:org/reranker", workloads: "rerank", start: () => startFakeLlamaCpp({ reranking: true }) },
    ],
  },
  {
    engine: "vllm",
    replicas: [
      {
        id: "vllm-embed",
        model: "fake-model",
        engineModel: "fake-model",
        workloads: "embedding,rerank",
        start: () => startFakeVllm({ task: "embed", embeddingDims: DIMS }),
      },
    ],
  },
];

/** The replicas of `spec` on their fakes behind one core and edge, all ended with the test. */
async function pooledSystem(t: ExecutionContext, spec: (typeof POOLED)[number]) {
  const fakes = await Promise.all(spec.replicas.map((r) => r.start()));
  t.teardown(() => Promise.all(fakes.map((f) => f.close())));
  const sys = await TestSystem.start({
    workers: spec.replicas.map((r, i) => ({
      replica: r.id,
      engine: spec.engine,
      model: r.model,
      slots: 2,
      flags: {
        "engine-url": fakes[i]!.url,
        "serves-any-model": "false",
        workloads: r.workloads,
        ...(r.engineModel ? { "engine-model": r.engineModel } : {}),
      },
    })),
  });
  t.teardown(() => sys.stop());
  return { fakes, sys };
}

/** One task of `workload` on the replica that serves it: its stream, checked against the OpenAPI document, without metrics frames. */
async function runPooled(
  t: ExecutionContext,
  sys: TestSystem,
  spec: (typeof POOLED)[number],
  workload: string,
  fields: Record<string, unknown>,
) {
  const replica = spec.replicas.find((r) => r.workloads.split(",").includes(workload))!;
  const body = taskBody({ engine: spec.engine, model_ref: replica.model, workload, max_tokens: 1, ctx: 1024, ...fields });
  const admitted = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
  t.is(admitted.status, 202, admitted.text);
  const path = `/v1/tasks/${body.task_id}/stream`;
  const s = await stream(sys.edgeUrl, path);
  await s.done;
  assertStreamConforms(t, path, s);
  t.is(s.events.find((e) => e.event === "metrics" && e.data.replica_id)?.data.replica_id, replica.id);
  return s.events.filter((e) => e.event !== "metrics");
}

for (const spec of POOLED) {
  test(`edge -> core -> sidecar -> ${spec.engine}: embedding and rerank results stream in input order, end with tokens_in`, async (t) => {
    const { fakes, sys } = await pooledSystem(t, spec);

    const embedded = await runPooled(t, sys, spec, "embedding", { prompt: "", inputs: INPUTS });
    t.deepEqual(
      embedded.map((e) => e.event),
      ["started", "embedding", "embedding", "embedding", "end"],
    );
    t.deepEqual(
      embedded.filter((e) => e.event === "embedding").map((e) => e.data),
      // Vectors travel as proto floats.
      INPUTS.map((text, i) => ({ i, embedding: fakeVector(text, DIMS).map(Math.fround) })),
    );
    const embedEnd = embedded.at(-1)!.data;
    t.is(
      embedEnd.tokens_in,
      INPUTS.reduce((n, text) => n + wordCount(text), 0),
      "the engine's usage.prompt_tokens",
    );
    t.is(embedEnd.tokens_out, 0);
    t.is(embedEnd.stop_reason, undefined);

    const ranked = await runPooled(t, sys, spec, "rerank", { prompt: QUERY, inputs: DOCUMENTS });
    t.deepEqual(
      ranked.map((e) => e.event),
      ["started", "rerank", "rerank", "rerank", "rerank", "end"],
    );
    t.deepEqual(
      ranked.filter((e) => e.event === "rerank").map((e) => e.data),
      DOCUMENTS.map((d, i) => ({ i, relevance_score: fakeRelevance(QUERY, d, i) })),
      "every document's score, in document order",
    );
    t.is(
      ranked.at(-1)!.data.tokens_in,
      DOCUMENTS.reduce((n, d) => n + wordCount(QUERY) + wordCount(d), 0),
    );
    t.is(fakes.flatMap((f) => f.poolingRequests()).length, 2, "one engine request per task");
    t.is(fakes.flatMap((f) => f.generations()).length, 0);
  });
}

test("a supervised engine: the sidecar starts it, is Ready only after its preload, and restarts it when it dies", async (t) => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const pidFile = join(mkdtempSync(join(tmpdir(), "llorch-engine-")), "pid");
  const script = join(projectRoot(), "test", "fakes", "llamacpp-fake-process.ts");
  const sys = await TestSystem.start({
    workers: [
      {
        replica: "supervised",
        engine: "llamacpp",
        model: "hf:org/e2e",
        flags: {
          "engine-url": `http://127.0.0.1:${port}`,
          "engine-cmd": `${process.execPath} --import tsx ${script} --port ${port} --pid-file ${pidFile} --load-ms 500`,
          "serves-any-model": "false",
        },
      },
    ],
  });
  t.teardown(() => sys.stop());
  const run = async () => {
    const body = taskBody({ engine: "llamacpp", model_ref: "hf:org/e2e", max_tokens: 10, ctx: 1024 });
    t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
    const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
    await s.done;
    return s.events;
  };
  t.is((await run()).at(-1)!.event, "end", "served once the supervised engine finished loading");

  process.kill(Number(readFileSync(pidFile, "utf8")), "SIGKILL");
  // The replica leaves placement while its engine is down, then comes back after the restart.
  let health = await api(t, sys.edgeUrl, "GET", "/v1/pools/default/health");
  for (let i = 0; i < 100 && health.json.metrics.replicas[0]?.ready !== false; i++) {
    await new Promise((r) => setTimeout(r, 50));
    health = await api(t, sys.edgeUrl, "GET", "/v1/pools/default/health");
  }
  t.false(health.json.ready, "not Ready while the engine is down");
  await sys.waitForReadyReplicas(1, 30_000);
  t.is((await run()).at(-1)!.event, "end", "served again after the restart");
  t.true(sys.logsOf(sys.worker("supervised").proc, "engine_exited").length > 0, "the sidecar logged the crash");
});
