// The JSON bodies of the OpenAI/vLLM fake that are not streams (see
// openai-fake.ts for the sources): model cards, vLLM's /metrics, and its
// embeddings and rerank answers.
import { fakeVector, rankedByScore, wordCount } from "./fake-pooling.js";
import type { FakeBehaviour, FakeFlavour } from "./openai-fake-behaviour.js";

/** GET /v1/models: vLLM's cards add max_model_len. */
export function modelCards(flavour: FakeFlavour, b: FakeBehaviour): object[] {
  return b.models.map((id) =>
    flavour === "vllm"
      ? { id, object: "model", created: now(), owned_by: "vllm", root: id, parent: null, max_model_len: b.maxModelLen, permission: [] }
      : { id, object: "model", created: now(), owned_by: "system" },
  );
}

/** vLLM's GET /metrics; requests running are the streams open now. */
export function vllmMetricsText(b: FakeBehaviour, open: number): string {
  const model = b.models[0] ?? "";
  const label = `{model_name="${model}"}`;
  const kv = b.legacyKvMetric ? "vllm:gpu_cache_usage_perc" : "vllm:kv_cache_usage_perc";
  return [
    "# HELP vllm:num_requests_running Number of requests in model execution batches.",
    "# TYPE vllm:num_requests_running gauge",
    `vllm:num_requests_running${label} ${open.toFixed(1)}`,
    "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
    "# TYPE vllm:num_requests_waiting gauge",
    `vllm:num_requests_waiting${label} ${b.requestsWaiting.toFixed(1)}`,
    `# HELP ${kv} KV-cache usage. 1 means 100 percent usage.`,
    `# TYPE ${kv} gauge`,
    `${kv}${label} ${b.kvCacheUsage}`,
    "# TYPE vllm:e2e_request_latency_seconds histogram",
    `vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="${model}"} 3.0`,
    "",
  ].join("\n");
}

/** protocol.py EmbeddingResponse. */
export function vllmEmbeddings(model: string | undefined, inputs: string[], dims: number, seq: number): unknown {
  const tokens = inputs.reduce((n, text) => n + wordCount(text), 0);
  return {
    id: `embd-fake${seq}`,
    object: "list",
    created: now(),
    model,
    data: inputs.map((text, index) => ({ index, object: "embedding", embedding: fakeVector(text, dims) })),
    usage: { prompt_tokens: tokens, total_tokens: tokens, completion_tokens: 0, prompt_tokens_details: null },
  };
}

/** protocol.py RerankResponse: best first, cut to top_n. */
export function vllmRerank(model: string | undefined, query: string, documents: string[], topN: number, seq: number): unknown {
  const tokens = documents.reduce((n, d) => n + wordCount(query) + wordCount(d), 0);
  return {
    id: `rerank-fake${seq}`,
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
    results: rankedByScore(query, documents)
      .slice(0, topN)
      .map(({ index, score }) => ({ index, document: { text: documents[index] }, relevance_score: score })),
  };
}

export function now(): number {
  return Math.floor(Date.now() / 1000);
}
