// What an HTTP engine serves, and the refusal of the rest. Neither the
// llama.cpp server nor vLLM tells a client whether it was started for
// generation, embeddings or reranking (llama.cpp's GET /props and vLLM's
// GET /v1/models carry no such field), so the operator says it with
// `--workloads` and the adapter holds the engine to it.
import { workloads as workloadNames } from "../../contracts/enums.js";
import { Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure } from "../engine-adapter.js";

/** What an engine server started the usual way serves. */
export const GENERATION_ONLY: readonly Workload[] = [Workload.WORKLOAD_COMPLETION];

/**
 * The workload `request` asks for (completion when it does not say), or a
 * non-retriable INVALID_REQUEST when the engine does not serve it: refused
 * here, before anything reaches the engine.
 */
export function servedWorkload(request: SubmitRequest, served: readonly Workload[], engine: string): Workload {
  const wanted = request.workload === Workload.WORKLOAD_UNSPECIFIED ? Workload.WORKLOAD_COMPLETION : request.workload;
  if (served.includes(wanted)) return wanted;
  const names = served.map((w) => workloadNames.name(w)).join(", ");
  throw new WorkerFailure(
    WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST,
    `this ${engine} serves ${names} tasks, not ${workloadNames.name(wanted)} (--workloads says what the engine was started for)`,
    false,
  );
}
