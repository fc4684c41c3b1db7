import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind } from "../../contracts/gen/llama_orch/v1/worker.js";

/** The one mapping from the adapters' WorkerErrorKind to public error codes. */
export const ERROR_CODE_OF_WORKER_ERROR: Record<WorkerErrorKind, ErrorCode> = {
  [WorkerErrorKind.WORKER_ERROR_KIND_UNSPECIFIED]: ErrorCode.ERROR_CODE_INTERNAL,
  [WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE]: ErrorCode.ERROR_CODE_POOL_UNREADY,
  [WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST]: ErrorCode.ERROR_CODE_INVALID_PARAMS,
  [WorkerErrorKind.WORKER_ERROR_KIND_CAPACITY]: ErrorCode.ERROR_CODE_REPLICA_EXHAUSTED,
  [WorkerErrorKind.WORKER_ERROR_KIND_TIMEOUT]: ErrorCode.ERROR_CODE_DECODE_TIMEOUT,
  [WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR]: ErrorCode.ERROR_CODE_INTERNAL,
  [WorkerErrorKind.WORKER_ERROR_KIND_RESET]: ErrorCode.ERROR_CODE_WORKER_RESET,
  [WorkerErrorKind.WORKER_ERROR_KIND_INTERNAL]: ErrorCode.ERROR_CODE_INTERNAL,
  [WorkerErrorKind.WORKER_ERROR_KIND_CORE_LOST]: ErrorCode.ERROR_CODE_CORE_UNAVAILABLE,
  [WorkerErrorKind.UNRECOGNIZED]: ErrorCode.ERROR_CODE_INTERNAL,
};

/**
 * Failures that happen before a replica produced anything and that another
 * attempt (there or on a sibling replica) can fix: the task goes back to the
 * head of its queue instead of failing.
 */
export function isRetriableBeforeStart(kind: WorkerErrorKind): boolean {
  return kind === WorkerErrorKind.WORKER_ERROR_KIND_CAPACITY || kind === WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE;
}
