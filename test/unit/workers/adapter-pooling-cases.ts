// The cases every HTTP adapter that serves embeddings and rerank shares
// (llama.cpp server, vLLM): results in input order with their indices,
// tokens_in from the engine's usage, errors before the answer mapped like a
// completion's, cancel closing the engine's request, a workload the server
// does not serve refused before anything reaches it, and Info saying what it
// serves. Each engine's pooling test file instantiates them with its fake.
import test, { type ExecutionContext } from "ava";
import { StopReason, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K, type SubmitRequest } from "../../../contracts/gen/llama_orch/v1/worker.js";
import type { EngineAdapter } from "../../../workers/engine-adapter.js";
import type { FakeRequest } from "../../fakes/fake-http.js";
import { fakeRelevance, fakeVector, rankedByScore, wordCount } from "../../fakes/fake-pooling.js";
import { collect, eventually, submitRequest, within, workerFailure } from "./helpers.js";

/** What the cases need of a fake engine that can be started for embeddings or reranking. */
export interface PoolingFake<Patch> {
  url: string;
  requests: FakeRequest[];
  generations(): FakeRequest[];
  poolingRequests(): FakeRequest[];
  setBehaviour(patch: Patch): void;
  close(): Promise<void>;
}

/** How the fake engine is started: for which workload, answering after `delayMs`, with vectors of `dims`. */
export interface PoolingFakeSetup {
  serves: "embedding" | "rerank" | "completion";
  delayMs?: number;
  dims?: number;
}

export interface PoolingSpec<Patch, F extends PoolingFake<Patch>> {
  engine: string;
  startFake(setup: PoolingFakeSetup): Promise<F>;
  /** `workloads` as --workloads would give them; undefined: the default. */
  createAdapter(url: string, workloads?: Workload[]): EngineAdapter;
  paths: { embeddings: string; rerank: string };
  /** The engine request for these inputs (the `model` field included where the engine routes by it). */
  embeddingsBody(inputs: string[]): unknown;
  rerankBody(query: string, documents: string[]): unknown;
  /** Behaviours that make the engine refuse before answering, and what that must become. */
  refusals: { workload: "embedding" | "rerank"; behaviour: Patch; kind: K; retriable: boolean; message: RegExp }[];
}

const INPUTS = ["the quick brown fox", "jumps", "over the lazy dog again"];
const QUERY = "where does the lazy dog sleep";
// Ranked by the fake otherwise than listed, so document order has to be restored.
const DOCUMENTS = ["a fox", "the lazy dog sleeps in the barn", "cats", "where the dog goes"];
const DIMS = 6;

const embeddingTask = (overrides: Partial<SubmitRequest> = {}): SubmitRequest =>
  submitRequest({ workload: Workload.WORKLOAD_EMBEDDING, prompt: "", inputs: INPUTS, ...overrides });
const rerankTask = (overrides: Partial<SubmitRequest> = {}): SubmitRequest =>
  submitRequest({ workload: Workload.WORKLOAD_RERANK, prompt: QUERY, inputs: DOCUMENTS, ...overrides });

/** How the cases read every engine's spec; the call site checks each spec's own types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the specs' type parameters differ per engine
type AnySpec = PoolingSpec<any, PoolingFake<any>>;

const EMBEDDING = [Workload.WORKLOAD_EMBEDDING];
const RERANK = [Workload.WORKLOAD_RERANK];

/** A fake started for `setup` and an adapter on it, Ready, both ended with the test. */
async function setUp(t: ExecutionContext, spec: AnySpec, setup: PoolingFakeSetup, workloads: Workload[] | undefined) {
  const fake = await spec.startFake({ dims: DIMS, ...setup });
  t.teardown(() => fake.close());
  const adapter = spec.createAdapter(fake.url, workloads);
  t.teardown(() => adapter.stop());
  await within(adapter.start(), 3_000, "adapter ready");
  return { fake, adapter };
}

function embedsInInputOrder(spec: AnySpec): void {
  test(`${spec.engine}: an embedding task gets one vector per input, in input order, after started with the engine's token count`, async (t) => {
    const { fake, adapter } = await setUp(t, spec, { serves: "embedding" }, EMBEDDING);
    const out = await collect(adapter, embeddingTask());
    t.is(out.error, undefined);
    const tokens = INPUTS.reduce((n, text) => n + wordCount(text), 0);
    t.deepEqual(out.calls, [`started:${tokens}`, "embedding:0", "embedding:1", "embedding:2"]);
    t.deepEqual(
      out.embeddings,
      INPUTS.map((text, index) => ({ index, vector: fakeVector(text, DIMS) })),
    );
    t.is(out.result?.stopReason, StopReason.STOP_REASON_UNSPECIFIED);
    t.is(out.result?.tokensIn, tokens, "usage.prompt_tokens");
    t.is(typeof out.result?.decodeTimeMs, "number");
    const [req] = fake.poolingRequests();
    t.is(req?.path, spec.paths.embeddings);
    t.deepEqual(req?.body, spec.embeddingsBody(INPUTS));
    t.is(fake.generations().length, 0);
  });
}

function embedsAPrompt(spec: AnySpec): void {
  test(`${spec.engine}: an embedding task without inputs embeds its prompt`, async (t) => {
    const { fake, adapter } = await setUp(t, spec, { serves: "embedding" }, EMBEDDING);
    const out = await collect(adapter, embeddingTask({ prompt: "just this", inputs: [] }));
    t.deepEqual(out.embeddings, [{ index: 0, vector: fakeVector("just this", DIMS) }]);
    t.deepEqual(fake.poolingRequests()[0]?.body, spec.embeddingsBody(["just this"]));
  });
}

function reranksInDocumentOrder(spec: AnySpec): void {
  test(`${spec.engine}: a rerank task gets every document's score back in document order, however the engine ranked them`, async (t) => {
    const { fake, adapter } = await setUp(t, spec, { serves: "rerank" }, RERANK);
    t.notDeepEqual(
      rankedByScore(QUERY, DOCUMENTS).map((r) => r.index),
      [0, 1, 2, 3],
      "the engine answers best first",
    );
    const out = await collect(adapter, rerankTask());
    t.is(out.error, undefined);
    const tokens = DOCUMENTS.reduce((n, d) => n + wordCount(QUERY) + wordCount(d), 0);
    t.deepEqual(out.calls, [`started:${tokens}`, "rerank:0", "rerank:1", "rerank:2", "rerank:3"]);
    t.deepEqual(
      out.scores,
      DOCUMENTS.map((d, index) => ({ index, score: fakeRelevance(QUERY, d, index) })),
    );
    t.deepEqual(out.result && { stopReason: out.result.stopReason, tokensIn: out.result.tokensIn }, {
      stopReason: StopReason.STOP_REASON_UNSPECIFIED,
      tokensIn: tokens,
    });
    const [req] = fake.poolingRequests();
    t.is(req?.path, spec.paths.rerank);
    t.deepEqual(req?.body, spec.rerankBody(QUERY, DOCUMENTS));
  });
}

function mapsRefusals(spec: AnySpec): void {
  test(`${spec.engine}: an engine's refusal before the answer fails with the mapped kind and its message, and starts nothing`, async (t) => {
    for (const row of spec.refusals) {
      const { fake, adapter } = await setUp(t, spec, { serves: row.workload }, row.workload === "embedding" ? EMBEDDING : RERANK);
      fake.setBehaviour(row.behaviour);
      const out = await collect(adapter, row.workload === "embedding" ? embeddingTask() : rerankTask());
      const failure = workerFailure(t, out.error);
      const at = `${row.workload} ${JSON.stringify(row.behaviour)}`;
      t.is(failure.kind, row.kind, at);
      t.is(failure.retriable, row.retriable, at);
      t.regex(failure.message, row.message, at);
      t.deepEqual(out.calls, [], at);
    }
  });
}

function refusesABrokenAnswer(spec: AnySpec): void {
  test(`${spec.engine}: an empty vector in the answer fails ENGINE_ERROR, naming the route, and delivers nothing`, async (t) => {
    // Seen from builds that break embeddings: `"embedding": []` for every input.
    const { adapter } = await setUp(t, spec, { serves: "embedding", dims: 0 }, EMBEDDING);
    const out = await collect(adapter, embeddingTask());
    const failure = workerFailure(t, out.error);
    t.is(failure.kind, K.WORKER_ERROR_KIND_ENGINE_ERROR);
    t.false(failure.retriable);
    t.is(failure.message, `POST ${spec.paths.embeddings}: data[0].embedding is not a list of numbers`);
    t.deepEqual(out.calls, []);
  });
}

function cancelsWhileComputing(spec: AnySpec): void {
  for (const workload of ["embedding", "rerank"] as const) {
    test(`${spec.engine}: cancel while the engine computes ${workload} closes its request and resolves CANCELED promptly`, async (t) => {
      const { fake, adapter } = await setUp(t, spec, { serves: workload, delayMs: 5_000 }, workload === "embedding" ? EMBEDDING : RERANK);
      const controller = new AbortController();
      const pending = collect(adapter, workload === "embedding" ? embeddingTask() : rerankTask(), controller.signal);
      t.true(await eventually(() => fake.poolingRequests().length === 1));
      const abortedAt = performance.now();
      controller.abort();
      const out = await within(pending, 1_000, "generate settles after the abort");
      t.true(performance.now() - abortedAt < 1_000);
      t.deepEqual(out.result, { stopReason: StopReason.STOP_REASON_CANCELED });
      t.deepEqual(out.calls, []);
      t.true(await eventually(() => fake.poolingRequests()[0]?.closedByClient === true), "the engine sees the connection close");
    });
  }
}

function refusesUnservedWorkloads(spec: AnySpec): void {
  test(`${spec.engine}: a workload the server was not started for is refused before any request reaches it`, async (t) => {
    const cases: [Workload[] | undefined, SubmitRequest][] = [
      [undefined, embeddingTask()],
      [undefined, rerankTask()],
      [EMBEDDING, rerankTask()],
      [EMBEDDING, submitRequest({ prompt: "a completion" })],
      [RERANK, embeddingTask()],
    ];
    for (const [workloads, request] of cases) {
      const { fake, adapter } = await setUp(t, spec, { serves: "completion" }, workloads);
      const sent = fake.requests.length;
      const out = await collect(adapter, request);
      const failure = workerFailure(t, out.error);
      t.is(failure.kind, K.WORKER_ERROR_KIND_INVALID_REQUEST);
      t.false(failure.retriable);
      t.regex(failure.message, /serves .* tasks, not (embedding|rerank|completion) \(--workloads says what the engine was started for\)/);
      t.deepEqual(out.calls, []);
      t.is(fake.requests.slice(sent).filter((r) => r.method === "POST").length, 0, "nothing was sent to the engine");
    }
  });
}

function reportsWorkloads(spec: AnySpec): void {
  test(`${spec.engine}: Info lists the workloads the server was started for, completion by default`, async (t) => {
    const { adapter } = await setUp(t, spec, { serves: "embedding" }, [Workload.WORKLOAD_EMBEDDING, Workload.WORKLOAD_RERANK]);
    t.deepEqual(adapter.info().workloads, [Workload.WORKLOAD_EMBEDDING, Workload.WORKLOAD_RERANK]);
    t.deepEqual(spec.createAdapter("http://127.0.0.1:9").info().workloads, [Workload.WORKLOAD_COMPLETION]);
  });
}

const CASES = [
  embedsInInputOrder,
  embedsAPrompt,
  reranksInDocumentOrder,
  mapsRefusals,
  refusesABrokenAnswer,
  cancelsWhileComputing,
  refusesUnservedWorkloads,
  reportsWorkloads,
];

export function poolingCases<Patch, F extends PoolingFake<Patch>>(spec: PoolingSpec<Patch, F>): void {
  for (const register of CASES) register(spec);
}
