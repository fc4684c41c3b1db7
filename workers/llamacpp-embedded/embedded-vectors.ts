// The embedding and rerank workloads on the embedded engine: one result per
// input, streamed as each is computed, in input order.
import type { LlamaEmbeddingContext, LlamaModel, LlamaRankingContext } from "node-llama-cpp";
import { StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure, type GenerationResult, type GenerationSink } from "../engine-adapter.js";
import { embeddingInputs } from "../engine/workload-inputs.js";

/** Each text's token count, refusing (before any work) a text that does not fit the context. */
function countTokens(model: LlamaModel, texts: readonly string[], contextSize: number, what: string): number[] {
  return texts.map((text, i) => {
    const n = model.tokenize(text, false).length;
    if (n > contextSize) {
      throw new WorkerFailure(
        WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST,
        `${what} ${i} has ${n} tokens, more than this slot's context of ${contextSize}`,
        false,
      );
    }
    return n;
  });
}

function engineFailure(workload: string, err: unknown): WorkerFailure {
  return new WorkerFailure(
    WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR,
    `llama.cpp failed computing ${workload}: ${(err as Error).message}`,
  );
}

export async function embed(
  context: LlamaEmbeddingContext,
  contextSize: number,
  request: SubmitRequest,
  signal: AbortSignal,
  sink: GenerationSink,
): Promise<GenerationResult> {
  const inputs = embeddingInputs(request);
  const counts = countTokens(context.model, inputs, contextSize, "input");
  const tokensIn = counts.reduce((a, b) => a + b, 0);
  sink.started(tokensIn);
  const startedAt = performance.now();
  for (const [index, input] of inputs.entries()) {
    if (signal.aborted) return { stopReason: StopReason.STOP_REASON_CANCELED, tokensIn };
    let vector: readonly number[];
    try {
      ({ vector } = await context.getEmbeddingFor(input));
    } catch (err) {
      throw engineFailure("an embedding", err);
    }
    sink.embedding(index, [...vector]);
  }
  return { stopReason: StopReason.STOP_REASON_UNSPECIFIED, tokensIn, decodeTimeMs: Math.round(performance.now() - startedAt) };
}

export async function rerank(
  context: LlamaRankingContext,
  contextSize: number,
  request: SubmitRequest,
  signal: AbortSignal,
  sink: GenerationSink,
): Promise<GenerationResult> {
  const query = request.prompt;
  const [queryTokens = 0] = countTokens(context.model, [query], contextSize, "query");
  // Query and document are scored together, so each pair must fit.
  const docTokens = countTokens(context.model, request.inputs, contextSize - queryTokens, "document");
  const tokensIn = docTokens.reduce((a, b) => a + b + queryTokens, 0);
  sink.started(tokensIn);
  const startedAt = performance.now();
  for (const [index, document] of request.inputs.entries()) {
    if (signal.aborted) return { stopReason: StopReason.STOP_REASON_CANCELED, tokensIn };
    let score: number;
    try {
      score = await context.rank(query, document);
    } catch (err) {
      throw engineFailure("a relevance score", err);
    }
    sink.rerank(index, score);
  }
  return { stopReason: StopReason.STOP_REASON_UNSPECIFIED, tokensIn, decodeTimeMs: Math.round(performance.now() - startedAt) };
}
