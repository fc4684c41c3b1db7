// The llama.cpp server adapter's embeddings (POST /v1/embeddings of a server
// started with --embeddings) and rerank (POST /rerank, --reranking), through
// the shared pooling cases, and what only llama.cpp does.
import test from "ava";
import { Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { createLlamaCppAdapter } from "../../../workers/llamacpp/llamacpp-adapter.js";
import { fakeRelevance } from "../../fakes/fake-pooling.js";
import { startFakeLlamaCpp, type FakeLlamaCpp, type FakeLlamaCppBehaviour } from "../../fakes/llamacpp-fake.js";
import { poolingCases, type PoolingFakeSetup } from "./adapter-pooling-cases.js";
import { collect, submitRequest, within } from "./helpers.js";

const FAST = { retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 }, probeTimeoutMs: 5_000, failureThreshold: 2 };

function startFake(setup: PoolingFakeSetup): Promise<FakeLlamaCpp> {
  return startFakeLlamaCpp({
    embeddings: setup.serves === "embedding",
    reranking: setup.serves === "rerank",
    poolingDelayMs: setup.delayMs ?? 0,
    embeddingDims: setup.dims ?? 8,
  });
}

const createAdapter = (url: string, workloads?: Workload[]) =>
  createLlamaCppAdapter({ baseUrl: url, modelRef: "hf:tiny/bge", pollIntervalMs: 25, ...(workloads ? { workloads } : {}) }, FAST);

poolingCases<Partial<FakeLlamaCppBehaviour>, FakeLlamaCpp>({
  engine: "llama.cpp",
  startFake,
  createAdapter,
  paths: { embeddings: "/v1/embeddings", rerank: "/rerank" },
  // No `model`: a llama.cpp server serves the one it was started with.
  embeddingsBody: (inputs) => ({ input: inputs, encoding_format: "float" }),
  rerankBody: (query, documents) => ({ query, documents, top_n: documents.length }),
  refusals: [
    {
      workload: "embedding",
      behaviour: { failBefore: { status: 400, message: "input is too large to process. increase the physical batch size" } },
      kind: K.WORKER_ERROR_KIND_INVALID_REQUEST,
      retriable: false,
      message: /^POST \/v1\/embeddings: HTTP 400: input is too large to process/,
    },
    {
      workload: "embedding",
      behaviour: { poolingNone: true },
      kind: K.WORKER_ERROR_KIND_INVALID_REQUEST,
      retriable: false,
      message: /HTTP 400: Pooling type 'none' is not OAI compatible/,
    },
    {
      // --workloads says embedding, the server was started without --embeddings.
      workload: "embedding",
      behaviour: { embeddings: false },
      kind: K.WORKER_ERROR_KIND_ENGINE_ERROR,
      retriable: false,
      message: /HTTP 501: This server does not support embeddings\. Start it with `--embeddings`/,
    },
    {
      workload: "rerank",
      behaviour: { reranking: false },
      kind: K.WORKER_ERROR_KIND_ENGINE_ERROR,
      retriable: false,
      message: /^POST \/rerank: HTTP 501: This server does not support reranking/,
    },
    {
      workload: "rerank",
      behaviour: { failBefore: { status: 503, message: "Loading model" } },
      kind: K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE,
      retriable: true,
      message: /HTTP 503: Loading model/,
    },
  ],
});

test("llama.cpp: builds that answered rerank in document order, unsorted, give the same scores", async (t) => {
  const fake = await startFakeLlamaCpp({ reranking: true, rerankOrder: "document" });
  t.teardown(() => fake.close());
  const adapter = createAdapter(fake.url, [Workload.WORKLOAD_RERANK]);
  t.teardown(() => adapter.stop());
  await within(adapter.start(), 3_000, "adapter ready");
  const documents = ["no match", "llamas eat grass", "grass"];
  const out = await collect(
    adapter,
    submitRequest({ workload: Workload.WORKLOAD_RERANK, prompt: "what do llamas eat", inputs: documents }),
  );
  t.deepEqual(
    out.scores,
    documents.map((d, index) => ({ index, score: fakeRelevance("what do llamas eat", d, index) })),
  );
});

test("llama.cpp: a server started with --embeddings and serving only that still reports its props, so it becomes Ready", async (t) => {
  const fake = await startFakeLlamaCpp({ embeddings: true, totalSlots: 3, ctx: 512 });
  t.teardown(() => fake.close());
  const adapter = createAdapter(fake.url, [Workload.WORKLOAD_EMBEDDING]);
  t.teardown(() => adapter.stop());
  await within(adapter.start(), 3_000, "adapter ready");
  t.is(adapter.slotsTotal(), 3);
  t.is(adapter.info().ctxMax, 512);
  t.deepEqual(adapter.info().workloads, [Workload.WORKLOAD_EMBEDDING]);
});
