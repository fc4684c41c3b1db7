// What an embedding or rerank task hands the engine, the same for every adapter.
import type { SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";

/** The texts of an embedding task: its inputs, or its prompt alone. */
export function embeddingInputs(request: SubmitRequest): string[] {
  return request.inputs.length > 0 ? request.inputs : [request.prompt];
}
