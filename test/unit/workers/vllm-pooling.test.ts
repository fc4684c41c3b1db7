// The vLLM adapter's embeddings (POST /v1/embeddings, a model served with
// --task embed) and rerank (POST /v1/rerank, --task score or embed), through
// the shared pooling cases.
import type { Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { createVllmAdapter } from "../../../workers/vllm/vllm-adapter.js";
import { startFakeVllm, type FakeBehaviour, type FakeOpenAi } from "../../fakes/openai-fake.js";
import { poolingCases, type PoolingFakeSetup } from "./adapter-pooling-cases.js";

const API_KEY = "vllm-pool-key-0a1b2c3d";
const MODEL = "BAAI/bge-reranker-base";

function startFake(setup: PoolingFakeSetup): Promise<FakeOpenAi> {
  return startFakeVllm({
    apiKey: API_KEY,
    models: [MODEL],
    task: setup.serves === "embedding" ? "embed" : setup.serves === "rerank" ? "score" : "generate",
    poolingDelayMs: setup.delayMs ?? 0,
    embeddingDims: setup.dims ?? 8,
  });
}

const createAdapter = (url: string, workloads?: Workload[]) =>
  createVllmAdapter({
    baseUrl: url,
    modelRef: `hf:${MODEL}`,
    apiKey: API_KEY,
    pollIntervalMs: 20,
    http: { retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } },
    ...(workloads ? { workloads } : {}),
  });

poolingCases<Partial<FakeBehaviour>, FakeOpenAi>({
  engine: "vLLM",
  startFake,
  createAdapter,
  paths: { embeddings: "/v1/embeddings", rerank: "/v1/rerank" },
  // Under the served model name, learned from /v1/models.
  embeddingsBody: (inputs) => ({ model: MODEL, input: inputs, encoding_format: "float" }),
  rerankBody: (query, documents) => ({ model: MODEL, query, documents, top_n: documents.length }),
  refusals: [
    {
      workload: "embedding",
      behaviour: {
        failBefore: {
          status: 400,
          message:
            "This model's maximum context length is 512 tokens. However, you requested 600 tokens in the input for embedding generation.",
        },
      },
      kind: K.WORKER_ERROR_KIND_INVALID_REQUEST,
      retriable: false,
      message: /^POST \/v1\/embeddings: HTTP 400: This model's maximum context length is 512 tokens/,
    },
    {
      // --workloads says embedding, vLLM runs the model for generation: the route is not registered.
      workload: "embedding",
      behaviour: { task: "generate" },
      kind: K.WORKER_ERROR_KIND_INVALID_REQUEST,
      retriable: false,
      message: /^POST \/v1\/embeddings: HTTP 404/,
    },
    {
      workload: "rerank",
      behaviour: { failBefore: { status: 500, message: "Engine loop has died", type: "InternalServerError" } },
      kind: K.WORKER_ERROR_KIND_ENGINE_ERROR,
      retriable: false,
      message: /^POST \/v1\/rerank: HTTP 500: Engine loop has died/,
    },
    {
      workload: "rerank",
      behaviour: { failBefore: { status: 503, message: "the model is still loading", type: "ServiceUnavailableError" } },
      kind: K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE,
      retriable: true,
      message: /HTTP 503: the model is still loading/,
    },
  ],
});
