// What the OpenAI/vLLM fake can be told and what it records (see
// openai-fake.ts for the sources): its flavours, behaviour knobs and their
// defaults, the options it starts with, and the handle a test holds.
import type { FakeRequest } from "./fake-http.js";
import type { Json } from "../support/json.js";

export type FakeFlavour = "openai" | "vllm";
export type FakeHealth = "ready" | "loading" | "down";

export interface FakeBehaviour {
  /** Texts streamed, one chunk each, cut to the request's max_tokens. */
  tokens: string[];
  /** Pause before each token chunk. */
  frameDelayMs: number;
  /** >0: write every SSE frame in pieces of this many bytes (splitting lines and UTF-8 characters). */
  splitBytes: number;
  /** Pause between those pieces (0: one turn of the event loop), so they reach the client as separate chunks. */
  splitDelayMs: number;
  /** Write the whole stream in one piece at its end (frameDelayMs and splitBytes are ignored). */
  coalesce: boolean;
  /** Answer the generation (or embeddings, rerank) request with this status and error body instead. */
  failBefore?: { status: number; message: string; type?: string };
  /** After this many tokens, send the flavour's in-stream error. */
  failAfter?: { tokens: number; message: string };
  /** After this many tokens, send nothing more and keep the connection open. */
  hangAfter?: number;
  /** After this many tokens, destroy the connection. */
  dropAfter?: number;
  health: FakeHealth;
  /** finish_reason for a stream that was not cut by max_tokens (default "stop"). */
  naturalFinish: string;
  /** Ids listed by /v1/models; a request for another model gets 404. */
  models: string[];
  /** vLLM: max_model_len on every model card. */
  maxModelLen: number;
  /** vLLM: /version. */
  version: string;
  /** vLLM /metrics: vllm:num_requests_waiting. (Running is the number of open streams.) */
  requestsWaiting: number;
  /** vLLM /metrics: KV cache fill 0..1. */
  kvCacheUsage: number;
  /** vLLM /metrics: publish KV usage under the pre-V1 name vllm:gpu_cache_usage_perc. */
  legacyKvMetric: boolean;
  /** vLLM: what the model runs (--task): generate serves completions, embed embeddings and rerank, score rerank. */
  task: "generate" | "embed" | "score";
  /** vLLM: length of the embedding vectors. */
  embeddingDims: number;
  /** vLLM: time /v1/embeddings and /v1/rerank take before answering. */
  poolingDelayMs: number;
}

export interface FakeOptions extends Partial<FakeBehaviour> {
  /** Default "openai". */
  flavour?: FakeFlavour;
  /** 0 (default) picks a free port; pass a closed fake's port to restart it there. */
  port?: number;
  /** When set, requests must carry `Authorization: Bearer <apiKey>` (vLLM: on /v1 paths only). */
  apiKey?: string;
}

export interface RecordedRequest extends FakeRequest<Json> {
  /** A stream was started for this request (status 200, SSE). */
  streamed: boolean;
  /** Resolves once the response is over, however it ended. */
  ended: Promise<RecordedRequest>;
}

export interface FakeOpenAi {
  url: string;
  port: number;
  flavour: FakeFlavour;
  /** Every request, in arrival order. */
  requests: RecordedRequest[];
  /** The POSTs to a generation endpoint, in arrival order. */
  generations(): RecordedRequest[];
  /** The POSTs to the embeddings and rerank endpoints, in arrival order. */
  poolingRequests(): RecordedRequest[];
  /** Changes behaviour from the next request on (health at once). */
  setBehaviour(changes: Partial<FakeBehaviour>): void;
  /** Streams currently open. */
  openStreams(): number;
  /** Stops listening and drops every connection (as a crashed engine would). */
  close(): Promise<void>;
}

export const FAKE_DEFAULTS: FakeBehaviour = {
  tokens: ["Hello", ",", " wörld", " 日本", " 🦙", "!"],
  frameDelayMs: 0,
  splitBytes: 0,
  splitDelayMs: 0,
  coalesce: false,
  health: "ready",
  naturalFinish: "stop",
  models: ["fake-model"],
  maxModelLen: 4096,
  version: "0.6.3",
  requestsWaiting: 0,
  kvCacheUsage: 0.25,
  legacyKvMetric: false,
  task: "generate",
  embeddingDims: 8,
  poolingDelayMs: 0,
};
