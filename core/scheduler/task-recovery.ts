import { ROOT_CONTEXT } from "@opentelemetry/api";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import type { Recovery, RecoveredTask } from "../journal/task-journal.js";
import type { Replica } from "../registry/replica.js";
import type { SlotLease } from "../registry/slot-lease.js";
import type { SessionStore } from "../sessions/session-store.js";
import { Task, type TerminalEvent } from "../tasks/task.js";
import type { PoolState } from "./pool-state.js";
import type { PoolTable } from "./pool-table.js";
import type { Predictions } from "./predictions.js";
import { taskLogFields } from "./task-labels.js";
import type { FinishTask } from "./task-lifecycle.js";
import type { TaskTable } from "./task-table.js";
import type { TimerSet } from "./timer-set.js";

/**
 * How far apart the runs of core number the events of a task they
 * recovered: run n numbers them after (n-1)·10⁹, above anything an earlier
 * run gave out (a task's log never holds a billion frames).
 */
export const SEQ_SPAN_PER_RUN = 1_000_000_000;

/**
 * The tasks a restarted core found unfinished in its journal, and the
 * generations sidecars kept while core was away. Queued tasks join their
 * pool's queue again, in admission order, under their own ids. Those that
 * were on a replica wait for that replica to register again and hand its
 * generation back; one that is not handed back within the grace ends with
 * a retriable CORE_UNAVAILABLE. Every recovered
 * log starts with `started` and numbers what follows after this run's span,
 * so a reader resuming with an earlier run's seq is told apart.
 */
export class TaskRecovery {
  /** Recovered tasks that were running when the last run ended: task id → the replica they ran on. */
  private readonly awaiting = new Map<string, string>();

  constructor(
    private readonly deps: {
      tasks: TaskTable;
      pools: PoolTable;
      sessions: SessionStore;
      predictions: Predictions;
      timers: TimerSet;
      logger: Logger;
      finish: FinishTask;
      queueChanged: (pool: PoolState) => void;
      dispatch: (poolId: string) => void;
      /** Takes a generation back from the replica that kept it, on a slot of it. */
      resume: (task: Task, replica: Replica, lease: SlotLease) => void;
      /** How long a recovered running task waits for its replica to hand it back. */
      reclaimGraceMs: number;
    },
  ) {}

  /** Puts the journal's unfinished tasks back: in their queues, or waiting for their replica. */
  restore(recovery: Recovery): void {
    if (recovery.tasks.length === 0) return;
    const seqBase = (recovery.epoch - 1) * SEQ_SPAN_PER_RUN;
    const pools = new Set<PoolState>();
    for (const recovered of recovery.tasks) pools.add(this.restoreOne(recovered, seqBase));
    for (const pool of pools) {
      this.deps.queueChanged(pool);
      this.deps.dispatch(pool.id);
    }
    if (this.awaiting.size > 0) this.deps.timers.later(this.deps.reclaimGraceMs, () => this.expire(), true);
    this.deps.logger.info(
      { event: "tasks_recovered", queued: recovery.tasks.length - this.awaiting.size, awaiting_replica: this.awaiting.size },
      `${recovery.tasks.length} tasks recovered from the journal: ${recovery.tasks.length - this.awaiting.size} queued again, ${this.awaiting.size} wait for their replica`,
    );
  }

  /**
   * A replica registered with the generations it kept while core was away.
   * Each one core still waits for (recovered from the journal, or queued
   * again after its call broke) is taken back on a slot of that replica;
   * the others are cancelled there. A recovered task that ran on this
   * replica and is not among them is lost, at once.
   */
  reclaim(replica: Replica, heldTaskIds: readonly string[]): void {
    const held = new Set(heldTaskIds);
    for (const taskId of held) {
      const task = this.deps.tasks.get(taskId);
      if (task?.state !== "queued") {
        // Its slot stays taken until the sidecar has stopped it: a Submit placed there sooner would find every slot busy.
        const lease = replica.claimHeldSlot();
        replica.cancelGeneration(taskId, () => lease.release());
        continue;
      }
      this.awaiting.delete(taskId);
      const pool = this.deps.pools.get(task.poolId);
      if (pool?.queue.remove(taskId)) this.deps.queueChanged(pool);
      this.deps.resume(task, replica, replica.claimHeldSlot());
    }
    for (const [taskId, replicaId] of [...this.awaiting]) {
      if (replicaId === replica.id && !held.has(taskId)) this.lose(taskId, `replica ${replica.id} registered again without it`);
    }
  }

  /** Ends a recovered task whose generation is gone: a client may have seen part of it, so it does not run again. */
  private lose(taskId: string, why: string): void {
    this.awaiting.delete(taskId);
    const task = this.deps.tasks.get(taskId);
    if (!task || task.state !== "queued") return;
    this.deps.logger.warn({ ...taskLogFields(task), event: "recovery_lost", reason: why }, `recovered task ${taskId} is lost: ${why}`);
    this.deps.finish(task, lostOnRestart(task, why), { ran: true });
  }

  private restoreOne(recovered: RecoveredTask, seqBase: number): PoolState {
    const { request, poolId, correlationId, admittedAt, owner, dispatchedTo } = recovered;
    const pool = this.deps.pools.ensureId(poolId, request.engine);
    const task = new Task(request, pool.id, correlationId, {
      predictedDurationMs: this.deps.predictions.durationMs(pool.id, request),
      span: undefined,
      traceContext: ROOT_CONTEXT,
      admittedAt,
      owner,
      mayHaveOutput: dispatchedTo !== undefined,
    });
    try {
      // The last run admitted this turn; counting it again keeps the session's accounting whole.
      this.deps.sessions.admitTurn(request.sessionId);
    } catch {
      // A session out of turns or budget now still gets the task it was promised.
    }
    this.deps.tasks.add(task);
    const queued = dispatchedTo === undefined && pool.queue.enqueue(task.id, request.priority, task);
    if (dispatchedTo !== undefined) this.awaiting.set(task.id, dispatchedTo);
    const queuePosition = pool.queue.positionOf(task.id) ?? 0;
    task.notePosition(queuePosition);
    task.log.append({ $case: "started", started: { queuePosition, predictedStartMs: 0 } });
    task.log.numberAfter(Math.max(seqBase, task.log.lastSeq));
    if (dispatchedTo === undefined && !queued) {
      // Only when the queue was made smaller (--queue-capacity) across the restart.
      this.deps.finish(task, lostOnRestart(task, `pool ${pool.id}'s queue is full`));
    }
    return pool;
  }

  private expire(): void {
    const grace = this.deps.reclaimGraceMs;
    for (const [taskId, replicaId] of [...this.awaiting]) {
      this.lose(
        taskId,
        `it was running on replica ${replicaId} when core restarted, and the replica did not hand it back within ${grace} ms`,
      );
    }
  }
}

function lostOnRestart(task: Task, why: string): TerminalEvent {
  return {
    $case: "error",
    error: {
      traceArtifactId: "",
      code: ErrorCode.ERROR_CODE_CORE_UNAVAILABLE,
      message: `core restarted and the task's generation is lost: ${why}; submit it again`,
      engine: task.request.engine,
      retriable: true,
    },
  };
}
