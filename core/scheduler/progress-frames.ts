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

  /** The periodic frame of each running task. */
  running(tasks: Iterable<Task>): void {
    for (const task of tasks) {
      task.log.append({
        $case: "metrics",
        metrics: {
          ...this.budgetFields(task),
          onTimeProbability: this.predictions.onTime(task),
          poolId: task.poolId,
          replicaId: task.replica?.id ?? "",
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
      task.log.append({
        $case: "metrics",
        metrics: {
          ...this.budgetFields(task),
          poolId: pool.id,
          replicaId: "",
          engineVersion: "",
          queueDepth: queued.length,
          queuePosition: position,
          predictedStartMs: Math.round(starts[position]!),
          onTimeProbability: this.predictions.onTime(task, starts[position]),
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
