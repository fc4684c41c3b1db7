import type { Budgets, TaskMetrics } from "../../contracts/gen/llama_orch/v1/task.js";
import type { Replica } from "../registry/replica.js";
import type { SessionStore } from "../sessions/session-store.js";
import type { Task } from "../tasks/task.js";
import type { PoolState } from "./pool-state.js";
import type { Predictions } from "./predictions.js";

/** Queue movement is reported at most this often per pool. */
const QUEUE_FRAME_INTERVAL_MS = 50;

/**
 * The `metrics` frames of task logs: the one at dispatch, the periodic one of
 * each running task, and the coalesced report of queue movement. Each says
 * how likely the task ends in time and what its session's budgets are now.
 */
export class ProgressFrames {
  /** Pools with a queue-movement report pending. */
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly sessions: SessionStore,
    private readonly predictions: Predictions,
  ) {}

  /** The session's budgets as the task stands now: its own usage so far is already spent. */
  liveBudgets(task: Task): Budgets | undefined {
    const s = this.sessions.get(task.request.sessionId);
    if (!s) return undefined;
    const b = s.budgets;
    const running = task.state === "running";
    const tokens = running ? task.tokensIn + task.tokensOut : 0;
    const ms = running ? Date.now() - task.dispatchedAt : 0;
    return {
      tokensRemaining: b.tokens === undefined ? undefined : Math.floor(b.tokens - tokens),
      timeRemainingMs: b.timeMs === undefined ? undefined : Math.floor(b.timeMs - ms),
      costRemaining: b.cost === undefined ? undefined : b.cost - (tokens / 1000) * this.sessions.costPerThousandTokens,
    };
  }

  /** The frame that says where a task was placed, and whether it waits for its replica to load the model again. */
  dispatched(task: Task, replica: Replica, queueDepth: number, wakes = false): void {
    task.log.append({
      $case: "metrics",
      metrics: {
        ...this.budgetFields(task),
        queueDepth,
        kvWarmth: task.kvWarm,
        poolId: replica.poolId,
        replicaId: replica.id,
        engineVersion: replica.engineVersion,
        onTimeProbability: this.predictions.onTime(task),
        waitsForModelLoad: wakes ? true : undefined,
      },
    });
  }

  /**
   * The periodic frame of each running task, only when it would say something
   * new: with 10k open streams a frame each per second was 10k frames/s of the
   * same figures. The on-time probability counts in whole percent.
   */
  running(tasks: Iterable<Task>): void {
    for (const task of tasks) {
      const budgets = this.budgetFields(task);
      const onTime = this.predictions.onTime(task);
      const replicaId = task.replica?.id ?? "";
      const signature = `${onTime === undefined ? "" : Math.round(onTime * 100)}|${budgets.tokensBudgetRemaining}|${budgets.timeBudgetRemainingMs}|${budgets.costBudgetRemaining}|${replicaId}`;
      if (!task.noteProgress(signature)) continue;
      task.log.append({
        $case: "metrics",
        metrics: {
          ...budgets,
          onTimeProbability: onTime,
          poolId: task.poolId,
          replicaId,
          engineVersion: task.replica?.engineVersion ?? "",
        },
      });
    }
  }

  /** Reports new positions and predicted starts to queued tasks whose place changed, at a bounded rate. */
  queueMoved(pool: PoolState): void {
    if (this.pending.has(pool.id)) return;
    const timer = setTimeout(() => {
      this.pending.delete(pool.id);
      this.reportPositions(pool);
    }, QUEUE_FRAME_INTERVAL_MS);
    this.pending.set(pool.id, timer);
  }

  private reportPositions(pool: PoolState): void {
    const queued = pool.queuedTasks();
    const starts = this.predictions.startsMs(
      pool.id,
      queued.map((t) => t.predictedDurationMs),
    );
    queued.forEach((task, position) => {
      if (!task.notePosition(position)) return;
      // No ready replica (all loading, or none back yet after a restart): no start to predict.
      const start = starts[position]!;
      task.log.append({
        $case: "metrics",
        metrics: {
          ...this.budgetFields(task),
          poolId: pool.id,
          replicaId: "",
          engineVersion: "",
          queueDepth: queued.length,
          queuePosition: position,
          predictedStartMs: Number.isFinite(start) ? Math.round(start) : undefined,
          onTimeProbability: Number.isFinite(start) ? this.predictions.onTime(task, start) : undefined,
        },
      });
    });
  }

  private budgetFields(task: Task): Pick<TaskMetrics, "tokensBudgetRemaining" | "timeBudgetRemainingMs" | "costBudgetRemaining"> {
    const b = this.liveBudgets(task);
    if (!b) return {};
    return { tokensBudgetRemaining: b.tokensRemaining, timeBudgetRemainingMs: b.timeRemainingMs, costBudgetRemaining: b.costRemaining };
  }
}
