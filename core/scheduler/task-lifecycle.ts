import { SpanStatusCode } from "@opentelemetry/api";
import { ErrorCode, StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import { SPAN_ATTRIBUTES } from "../../contracts/runtime/trace-context.js";
import type { CoreMetrics } from "../metrics.js";
import type { Replica } from "../registry/replica.js";
import type { SessionStore } from "../sessions/session-store.js";
import type { Task, TerminalEvent } from "../tasks/task.js";
import type { TraceRecorder } from "../tasks/trace-recorder.js";
import type { TaskJournalSink } from "../journal/task-journal.js";
import type { PoolState } from "./pool-state.js";
import type { PoolTable } from "./pool-table.js";
import type { Predictions } from "./predictions.js";
import { cancelReasonLabel, latencyLabels, replicaLabels, taskLogFields } from "./task-labels.js";
import type { TaskTable } from "./task-table.js";
import { stopGeneration } from "./generation-stop.js";

/**
 * Ends a task. `ran` says it ran although it is not running now (its last
 * attempt was abandoned), so its session is charged as for any run.
 */
export type FinishTask = (task: Task, terminal: TerminalEvent, opts?: { ran?: boolean }) => void;

/**
 * How tasks end: `finish`, the single exit (terminal event, slot back,
 * accounting, retention), and what leads to it from outside the Submit
 * stream: cancel, the watchdog (wall and idle timeouts), and a client that
 * stopped reading for longer than the grace period.
 */
export class TaskLifecycle {
  constructor(
    private readonly deps: {
      tasks: TaskTable;
      pools: PoolTable;
      sessions: SessionStore;
      predictions: Predictions;
      metrics: CoreMetrics;
      logger: Logger;
      traceRecorder: () => TraceRecorder | undefined;
      journal: () => TaskJournalSink | undefined;
      /** A finished task left its queue: gauges and movement frames. */
      queueChanged: (pool: PoolState) => void;
      /** A slot came back: the pool may start more work. */
      dispatch: (poolId: string) => void;
      options: { wallTimeoutMs: number; idleTimeoutMs: number; disconnectGraceMs: number };
    },
  ) {}

  readonly finish: FinishTask = (task, terminal, opts = {}) => {
    if (task.state === "finished") return;
    const replica = task.replica;
    const wasRunning = task.state === "running";
    const pool = this.deps.pools.get(task.poolId);
    if (task.state === "queued" && pool?.queue.remove(task.id)) this.deps.queueChanged(pool);
    const now = Date.now();
    this.deps.tasks.finish(task, now);
    this.deps.journal()?.finished(task.id);
    this.closeLog(task, terminal);
    const decodeTimeMs = task.dispatchedAt ? now - task.dispatchedAt : 0;
    if (replica && wasRunning) this.recordRun(task, replica, terminal, decodeTimeMs);
    if (wasRunning || opts.ran || task.tokensOut > 0) {
      this.deps.sessions.recordUsage(task.request.sessionId, {
        tokensIn: task.tokensIn,
        tokensOut: task.tokensOut,
        decodeTimeMs,
        ...(replica && task.tokensOut > 0 ? { replicaId: replica.id } : {}),
      });
    }
    const fields = { ...taskLogFields(task), tokens_in: task.tokensIn, tokens_out: task.tokensOut, decode_time_ms: decodeTimeMs };
    if (terminal.$case === "error") {
      this.deps.logger.warn(
        { ...fields, event: "failed", code: terminal.error.code, error: terminal.error.message },
        `task ${task.id} failed: ${terminal.error.message}`,
      );
    } else {
      this.deps.logger.info({ ...fields, event: "finished" }, `task ${task.id} finished with ${task.tokensOut} tokens`);
    }
    if (replica && wasRunning) this.deps.dispatch(task.poolId);
  };

  /**
   * Cancels a queued or running task: its log ends at once with
   * `end{stop_reason: canceled}`, so no token can follow, and the replica's
   * generation is cancelled. Returns false for an already finished task.
   */
  cancel(taskId: string, reason: string): boolean {
    const task = this.deps.tasks.get(taskId);
    if (!task) throw OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `unknown task ${taskId}`);
    if (task.state === "finished") return false;
    const replica = task.replica;
    const call = task.call;
    const decodeTimeMs = task.dispatchedAt ? Date.now() - task.dispatchedAt : 0;
    this.finish(task, {
      $case: "end",
      end: {
        traceArtifactId: "",
        tokensOut: task.tokensOut,
        decodeTimeMs,
        tokensIn: task.tokensIn,
        stopReason: StopReason.STOP_REASON_CANCELED,
      },
    });
    stopGeneration(task.id, call, replica);
    this.deps.metrics.tasksCanceled.inc({ ...replicaLabels(task, replica), reason: cancelReasonLabel(reason) });
    this.deps.logger.info(
      { ...taskLogFields(task), event: "canceled", reason },
      `task ${task.id} cancelled (${reason}) after ${task.tokensOut} tokens`,
    );
    return true;
  }

  /** Ends a task from outside its stream (drain, shutdown) and cancels its generation on the replica. */
  stop(task: Task, code: ErrorCode, message: string, canceledReason?: string): void {
    const call = task.call;
    const replica = task.replica;
    if (canceledReason) this.deps.metrics.tasksCanceled.inc({ ...replicaLabels(task, replica), reason: canceledReason });
    this.finish(task, { $case: "error", error: { traceArtifactId: "", code, message, engine: task.request.engine, retriable: true } });
    stopGeneration(task.id, call, replica);
  }

  /** Ends running tasks that ran too long or stopped producing, and cancels them on their replica. */
  watchdog(): void {
    const now = Date.now();
    const { wallTimeoutMs, idleTimeoutMs } = this.deps.options;
    for (const task of [...this.deps.tasks.running]) {
      if (!task.hasOutput && task.replica?.isLoadingModel) task.noteModelLoading(now);
      const wall = wallTimeoutMs > 0 && now - task.dispatchedAt > wallTimeoutMs;
      const idle = idleTimeoutMs > 0 && now - task.lastProgressAt > idleTimeoutMs;
      if (!wall && !idle) continue;
      const message = wall
        ? `task ran longer than the wall timeout of ${wallTimeoutMs} ms and was stopped`
        : `no token for ${now - task.lastProgressAt} ms (idle timeout ${idleTimeoutMs} ms); the task was stopped`;
      this.stop(task, ErrorCode.ERROR_CODE_DECODE_TIMEOUT, message, "watchdog");
    }
  }

  /**
   * Core is shutting down: the given tasks (queued ones when the drain begins,
   * whatever is left when its grace is over) end with SHUTTING_DOWN, which is
   * retriable, and are cancelled on their replicas.
   */
  shutdown(tasks: readonly Task[], message: string): void {
    for (const task of tasks) {
      if (task.state !== "finished") this.stop(task, ErrorCode.ERROR_CODE_SHUTTING_DOWN, message, "shutdown");
    }
  }

  /** A client started reading the task's stream. */
  streamOpened(task: Task): void {
    task.readerJoined();
  }

  /**
   * A client stopped reading before the stream ended. When it was the last,
   * the task is cancelled after the grace period unless someone reconnects.
   */
  streamAbandoned(task: Task): void {
    task.readerLeft(this.deps.options.disconnectGraceMs, () => this.cancel(task.id, "disconnect"));
  }

  /** The terminal event (naming the transcript, when one is kept) ends the log and the span. */
  private closeLog(task: Task, terminal: TerminalEvent): void {
    const recorder = this.deps.traceRecorder();
    if (recorder) terminal = withTraceId(terminal, recorder.record(task, terminal));
    task.log.append(terminal);
    if (terminal.$case === "error") task.span?.setStatus({ code: SpanStatusCode.ERROR, message: terminal.error.message });
    task.span?.setAttributes({
      [SPAN_ATTRIBUTES.tokensIn]: task.tokensIn,
      [SPAN_ATTRIBUTES.tokensOut]: task.tokensOut,
      ...(task.replica ? { [SPAN_ATTRIBUTES.replicaId]: task.replica.id } : {}),
    });
    task.span?.end();
  }

  /** Counters and latency of a run on a replica; a run that ended on its own also teaches the throughput estimate. */
  private recordRun(task: Task, replica: Replica, terminal: TerminalEvent, decodeTimeMs: number): void {
    const { metrics } = this.deps;
    const labels = replicaLabels(task, replica);
    metrics.tokensOut.inc(labels, task.tokensOut);
    metrics.tokensIn.inc(labels, task.tokensIn);
    metrics.decodeMs.observe(latencyLabels(task, replica), decodeTimeMs);
    this.deps.pools.get(task.poolId)?.recordCompletion(task.finishedAt);
    if (terminal.$case === "end" && terminal.end.stopReason !== StopReason.STOP_REASON_CANCELED && task.firstTokenAt) {
      this.deps.predictions.recordRun(replica.id, task, decodeTimeMs);
    }
  }
}

function withTraceId(t: TerminalEvent, traceArtifactId: string): TerminalEvent {
  return t.$case === "end"
    ? { $case: "end", end: { ...t.end, traceArtifactId } }
    : { $case: "error", error: { ...t.error, traceArtifactId } };
}
