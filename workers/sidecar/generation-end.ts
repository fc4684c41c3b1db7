// How a generation ends: the terminal message its client gets and the one
// generation_end log line that records it, whoever ended it (the engine, the
// client, a Cancel request or the worker's shutdown).
import { StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type WorkerEnd, type WorkerError } from "../../contracts/gen/llama_orch/v1/worker.js";
import { stopReasonName } from "../../contracts/enums.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { publicText } from "../../contracts/runtime/public-text.js";
import { WorkerFailure, workerErrorKinds, type GenerationResult } from "../engine-adapter.js";
import type { GenerationOutcome } from "./metrics.js";
import type { Terminal } from "./submit-stream.js";

/** What a generation's end is reported from: its counts and when it started. */
export interface GenerationCounts {
  tokensIn: number;
  readonly tokensOut: number;
  startedAt: number | undefined;
}

/** Why the sidecar stopped a running generation. */
export type StopCause = "client_cancelled" | "cancel_rpc" | "shutdown" | "hold_full" | "hold_expired";

/** Why a held generation (its call broke, no Resume came) was given up. */
const CORE_LOST: Partial<Record<StopCause, string>> = {
  hold_full: "core went away and the generation produced more than this sidecar holds for it (--hold-max-events); stopped",
  hold_expired: "core went away and did not resume the generation within this sidecar's --hold-ms; stopped",
};

export function failure(kind: WorkerErrorKind, message: string, retriable: boolean): WorkerError {
  return { kind, message, retriable };
}

/**
 * The WorkerError a failed generation ends with; only WorkerFailures carry their own kind.
 * Its message reaches the client, so it is the public text of the failure (no engine
 * address, socket error code or stack frame); logEnd logs the detail.
 */
export function errorOf(err: unknown): WorkerError {
  if (err instanceof WorkerFailure) return failure(err.kind, publicText(err.message), err.retriable);
  const message = err instanceof Error ? err.message : String(err);
  return failure(WorkerErrorKind.WORKER_ERROR_KIND_INTERNAL, publicText(`unexpected adapter failure: ${message}`), false);
}

const STOP_WHY: Record<StopCause, string> = {
  client_cancelled: "the client cancelled the call",
  cancel_rpc: "a Cancel request",
  shutdown: "worker shutdown",
  hold_full: "core stayed away while the hold filled",
  hold_expired: "core stayed away past the hold",
};

function decodeTimeSince(startedAt: number | undefined): number {
  return startedAt === undefined ? 0 : Math.round(performance.now() - startedAt);
}

/** The end of a generation the adapter finished. */
export function endOf(result: GenerationResult, stream: GenerationCounts): Terminal {
  // The engine's final count wins over the one it gave at start, for the end event, log and metrics alike.
  if (result.tokensIn !== undefined) stream.tokensIn = result.tokensIn;
  return {
    $case: "end",
    end: {
      tokensOut: stream.tokensOut,
      tokensIn: stream.tokensIn,
      decodeTimeMs: result.decodeTimeMs ?? decodeTimeSince(stream.startedAt),
      stopReason: result.stopReason,
    },
  };
}

/** A stop by the sidecar overrides whatever the adapter settled with: it knows why it aborted. */
export function stoppedTerminal(cause: StopCause | undefined, stream: GenerationCounts): Terminal | undefined {
  if (cause === "cancel_rpc") return { $case: "end", end: cancelledEnd(stream) };
  if (cause === "shutdown")
    return { $case: "error", error: failure(WorkerErrorKind.WORKER_ERROR_KIND_RESET, "the worker is shutting down", true) };
  const lost = cause === undefined ? undefined : CORE_LOST[cause];
  if (lost) return { $case: "error", error: failure(WorkerErrorKind.WORKER_ERROR_KIND_CORE_LOST, lost, true) };
  return undefined;
}

function cancelledEnd(stream: GenerationCounts): WorkerEnd {
  return {
    tokensOut: stream.tokensOut,
    tokensIn: stream.tokensIn,
    decodeTimeMs: decodeTimeSince(stream.startedAt),
    stopReason: StopReason.STOP_REASON_CANCELED,
  };
}

export function logEnd(
  log: Logger,
  taskId: string,
  outcome: GenerationOutcome,
  cause: StopCause | undefined,
  stream: GenerationCounts,
  terminal: Terminal,
  failed: unknown,
): void {
  const fields = {
    event: "generation_end",
    outcome,
    tokens_in: stream.tokensIn,
    tokens_out: stream.tokensOut,
    decode_time_ms: terminal.$case === "end" ? terminal.end.decodeTimeMs : decodeTimeSince(stream.startedAt),
  };
  if (cause !== undefined) {
    const why = STOP_WHY[cause];
    log.info({ ...fields, reason: cause }, `stopped task ${taskId} after ${stream.tokensOut} tokens: ${why}`);
  } else if (terminal.$case === "end") {
    const reason = stopReasonName(terminal.end.stopReason) ?? "unspecified";
    log.info(
      { ...fields, stop_reason: reason },
      `finished task ${taskId}: ${stream.tokensOut} tokens in ${fields.decode_time_ms} ms (${reason})`,
    );
  } else {
    const kind = workerErrorKinds.name(terminal.error.kind);
    // Stack traces only for failures the adapter did not classify: those are bugs.
    const err = failed instanceof WorkerFailure ? undefined : failed;
    // The client got the public text; the log keeps what the adapter said.
    const detail = failed instanceof Error ? failed.message : terminal.error.message;
    log.warn(
      { ...fields, error_kind: kind, error_message: terminal.error.message, error_detail: detail, err },
      `task ${taskId} failed after ${stream.tokensOut} tokens: ${detail}`,
    );
  }
}
