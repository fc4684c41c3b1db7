import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { CreateTaskRequest } from "../../contracts/gen/llama_orch/v1/task.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import type { PlacementDecision } from "../placement/placement.js";
import type { TerminalEvent } from "../tasks/task.js";
import type { QueueFullPolicy } from "./queue-policy.js";

/**
 * The admission checks. Each is a pure function of what the scheduler knows
 * at that moment and returns a refusal or nothing; the scheduler applies
 * them in order, counts the refusal and throws its error.
 */
export interface Refusal {
  /** The `reason` label of tasks_rejected_total. */
  reason: string;
  error: OrchError;
}

/** How long a client refused by a core that is shutting down should wait: about as long as a restart takes. */
export const SHUTDOWN_RETRY_AFTER_MS = 2_000;

/** A core that is shutting down takes nothing new; another core, or this one restarted, will. */
export function shutdownRefusal(shuttingDown: boolean): Refusal | undefined {
  if (!shuttingDown) return undefined;
  return {
    reason: "shutting_down",
    error: OrchError.of(ErrorCode.ERROR_CODE_SHUTTING_DOWN, "core is shutting down and admits no new tasks; retry shortly", {
      retriable: true,
      retryAfterMs: SHUTDOWN_RETRY_AFTER_MS,
    }),
  };
}

/** A task id names one task for as long as core remembers it. */
export function duplicateTaskRefusal(taskId: string, known: boolean): Refusal | undefined {
  if (!known) return undefined;
  return {
    reason: "duplicate_task_id",
    error: OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `task_id ${taskId} already exists`, { field: "/task_id" }),
  };
}

/** Every token the task may generate has to fit in its context. */
export function ctxRefusal(request: CreateTaskRequest): Refusal | undefined {
  if (request.maxTokens <= request.ctx) return undefined;
  return {
    reason: "ctx_exceeded",
    error: OrchError.of(
      ErrorCode.ERROR_CODE_INVALID_PARAMS,
      `max_tokens ${request.maxTokens} does not fit in ctx ${request.ctx}; raise ctx or lower max_tokens`,
      { field: "/max_tokens" },
    ),
  };
}

/** The catalog's refusal of the model (retired or untrusted), if it gave one. */
export function catalogRefusal(refusal: OrchError | undefined): Refusal | undefined {
  if (!refusal) return undefined;
  return {
    reason: refusal.detail.code === ErrorCode.ERROR_CODE_MODEL_DEPRECATED ? "model_deprecated" : "untrusted_artifact",
    error: refusal,
  };
}

/**
 * No pool serves the model at all: the advice on how to get it loaded (or
 * that it is being fetched) replaces the bare POOL_UNAVAILABLE.
 */
export function unservedModelRefusal(
  decision: PlacementDecision,
  someReplicaServesModel: boolean,
  advice: () => OrchError | undefined,
): Refusal | undefined {
  if (decision.outcome !== "infeasible" || decision.code !== ErrorCode.ERROR_CODE_POOL_UNAVAILABLE || someReplicaServesModel)
    return undefined;
  const error = advice();
  return error ? { reason: "model_not_loaded", error } : undefined;
}

/** No replica can take the task as it stands; POOL_UNREADY is worth retrying in a second. */
export function placementRefusal(decision: Extract<PlacementDecision, { outcome: "infeasible" }>, request: CreateTaskRequest): Refusal {
  const unready = decision.code === ErrorCode.ERROR_CODE_POOL_UNREADY;
  return {
    reason: placementReasonLabel(decision.code),
    error: OrchError.of(decision.code, decision.message, {
      field: decision.field ?? "",
      engine: request.engine,
      retriable: unready,
      ...(unready ? { retryAfterMs: 1_000 } : {}),
    }),
  };
}

/** The session store refused another turn (turn limit or an exhausted budget). */
export function sessionRefusal(err: OrchError): Refusal {
  return { reason: err.detail?.policyLabel === "session-turns" ? "session_turns" : "session_budget", error: err };
}

/**
 * Deadline feasibility, on measured throughput only: with nothing measured
 * yet (`predictedDurationMs` undefined) the task gets the benefit of the doubt.
 */
export function deadlineRefusal(
  request: CreateTaskRequest,
  predictedStartMs: number,
  predictedDurationMs: number | undefined,
): Refusal | undefined {
  if (predictedDurationMs === undefined || predictedStartMs + predictedDurationMs <= request.deadlineMs) return undefined;
  return {
    reason: "deadline_unmet",
    error: OrchError.of(
      ErrorCode.ERROR_CODE_DEADLINE_UNMET,
      `predicted start in ${Math.round(predictedStartMs)} ms plus ${Math.round(predictedDurationMs)} ms of decode exceeds deadline_ms ${request.deadlineMs}; allow more time, lower max_tokens, or retry later`,
      { field: "/deadline_ms", engine: request.engine, retriable: true },
    ),
  };
}

/** The code a full queue answers with, to the newcomer or to the task it drops. */
export function queueFullCode(policy: QueueFullPolicy): ErrorCode {
  return policy === "drop-lru" ? ErrorCode.ERROR_CODE_QUEUE_FULL_DROP_LRU : ErrorCode.ERROR_CODE_ADMISSION_REJECT;
}

/** The pool's queue is full and its policy found nothing to give way. */
export function queueFullRefusal(
  queue: { poolId: string; capacity: number },
  policy: QueueFullPolicy,
  request: CreateTaskRequest,
  retryAfterMs: number,
): Refusal {
  const why =
    policy === "reject" ? "" : policy === "drop-lru" ? " and holds no batch task to drop" : " and a batch task cannot displace another";
  return {
    reason: "queue_full",
    error: OrchError.of(
      queueFullCode(policy),
      `queue of pool ${queue.poolId} is full (${queue.capacity} tasks)${why}; retry in ${retryAfterMs} ms`,
      {
        engine: request.engine,
        retriable: true,
        retryAfterMs,
        policyLabel: policy,
      },
    ),
  };
}

/** The terminal event of a queued task the full-queue policy dropped to admit newer work. */
export function droppedFromQueue(victim: CreateTaskRequest, poolId: string, policy: QueueFullPolicy): TerminalEvent {
  return {
    $case: "error",
    error: {
      traceArtifactId: "",
      code: queueFullCode(policy),
      message: `dropped from the full queue of pool ${poolId} to admit newer work (policy ${policy}); resubmit later`,
      engine: victim.engine,
      retriable: true,
    },
  };
}

/** `tasks_rejected_total{reason}` for a placement refusal. */
function placementReasonLabel(code: ErrorCode): string {
  switch (code) {
    case ErrorCode.ERROR_CODE_POOL_UNAVAILABLE:
      return "pool_unavailable";
    case ErrorCode.ERROR_CODE_POOL_UNREADY:
      return "pool_unready";
    case ErrorCode.ERROR_CODE_INVALID_PARAMS:
      return "ctx_exceeded";
    default:
      return "placement";
  }
}
