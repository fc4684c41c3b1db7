// One embedding or rerank task on an HTTP engine that answers it at once:
// one POST with every input, the answer checked against its documented
// shape (pooling-protocol.ts), then `started` with the engine's token count
// and one result per input in input order. Cancel closes the request, which
// is how the engine learns to drop it.
import { StopReason, Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure, type GenerationResult, type GenerationSink } from "../engine-adapter.js";
import type { EngineHttp } from "../http/engine-http.js";
import { embeddingInputs } from "./workload-inputs.js";
import { AnswerShapeError, embeddingsBody, rerankBody, scoresOf, vectorsOf } from "./pooling-protocol.js";

/** Where an engine takes each workload. */
export interface PoolingPaths {
  embeddings: string;
  rerank: string;
}

export interface PoolingTask {
  http: EngineHttp;
  paths: PoolingPaths;
  /** The request's `model` field, for engines that route by it. */
  model?: string | undefined;
  request: SubmitRequest;
  signal: AbortSignal;
  sink: GenerationSink;
}

const CANCELED: GenerationResult = { stopReason: StopReason.STOP_REASON_CANCELED };

/**
 * Runs `task` as `workload` (embedding or rerank). Rejects WorkerFailure:
 * the HTTP layer's kinds before the answer, ENGINE_ERROR for an answer that
 * breaks the documented shape (nothing reaches the sink then). Resolves
 * CANCELED once `signal` aborts.
 */
export async function runPooling(workload: Workload, task: PoolingTask): Promise<GenerationResult> {
  const { http, request, signal, sink } = task;
  const rerank = workload === Workload.WORKLOAD_RERANK;
  const path = rerank ? task.paths.rerank : task.paths.embeddings;
  const inputs = rerank ? request.inputs : embeddingInputs(request);
  const body = rerank ? rerankBody(request.prompt, inputs, task.model) : embeddingsBody(inputs, task.model);
  if (signal.aborted) return CANCELED;
  const startedAt = performance.now();
  let answer: unknown;
  try {
    // retryConnect: a refused connection sent nothing, so a restarting engine gets another try.
    ({ body: answer } = await http.postJson(path, body, { signal, retryConnect: true }));
  } catch (err) {
    if (signal.aborted) return CANCELED;
    throw err;
  }
  // The engine computed every result before answering: its time is the request's.
  const decodeTimeMs = Math.round(performance.now() - startedAt);
  try {
    if (rerank) {
      const { scores, tokensIn } = scoresOf(answer, inputs.length);
      sink.started(tokensIn ?? 0);
      scores.forEach((score, index) => sink.rerank(index, score));
      return result(tokensIn, decodeTimeMs);
    }
    const { vectors, tokensIn } = vectorsOf(answer, inputs.length);
    sink.started(tokensIn ?? 0);
    vectors.forEach((vector, index) => sink.embedding(index, vector));
    return result(tokensIn, decodeTimeMs);
  } catch (err) {
    if (!(err instanceof AnswerShapeError)) throw err;
    throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR, http.redact(`POST ${path}: ${err.message}`));
  }
}

function result(tokensIn: number | undefined, decodeTimeMs: number): GenerationResult {
  const out: GenerationResult = { stopReason: StopReason.STOP_REASON_UNSPECIFIED, decodeTimeMs };
  if (tokensIn !== undefined) out.tokensIn = tokensIn;
  return out;
}
