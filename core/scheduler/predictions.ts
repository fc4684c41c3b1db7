import type { CreateTaskRequest } from "../../contracts/gen/llama_orch/v1/task.js";
import type { ReplicaRegistry } from "../registry/replica-registry.js";
import type { Task } from "../tasks/task.js";
import type { PoolState } from "./pool-state.js";
import { onTimeProbability, predictQueueStartsMs, ThroughputEstimator } from "./throughput-estimator.js";

/**
 * What the scheduler predicts for clients: a task's duration, the start of
 * each queued task, the chance a task ends within its deadline, and the wait
 * to advise after a full-queue refusal. Learns from the runs it is told about.
 */
export class Predictions {
  private readonly estimator = new ThroughputEstimator();

  constructor(
    private readonly registry: ReplicaRegistry,
    /** The running tasks, whose remaining work delays everything queued. */
    private readonly running: () => Iterable<Task>,
  ) {}

  /** Predicted dispatch-to-end time of the request on the pool; undefined until the pool's throughput was measured. */
  durationMs(poolId: string, request: CreateTaskRequest): number | undefined {
    return this.estimator.predictDurationMs(this.replicaIdsOf(poolId), tokensExpected(request));
  }

  /** Predicted start of each queued task (durations in queue order) given the pool's slots and running work. */
  startsMs(poolId: string, durationsMs: readonly (number | undefined)[]): number[] {
    // A replica that unloaded its model takes work too (it loads it again first).
    const replicas = this.registry.inPool(poolId).filter((r) => r.isReady || r.wakesOnSubmit);
    const slots = replicas.reduce((n, r) => n + r.slotsTotal, 0);
    const now = Date.now();
    const busy: number[] = [];
    for (const t of this.running()) {
      if (t.poolId === poolId) busy.push(Math.max(0, (t.predictedDurationMs ?? 0) - (now - t.dispatchedAt)));
    }
    busy.sort((a, b) => a - b);
    return predictQueueStartsMs({ slots, busyRemainingMs: busy, durationsMs: durationsMs.map((d) => d ?? 0) });
  }

  /** P(the task ends within its deadline_ms of admission); undefined until throughput was measured. */
  onTime(task: Task, predictedStartMs = 0): number | undefined {
    if (task.predictedDurationMs === undefined) return undefined;
    const now = Date.now();
    const elapsed = now - task.admittedAt;
    const remaining =
      task.state === "running"
        ? Math.max(0, task.predictedDurationMs - (now - task.dispatchedAt))
        : predictedStartMs + task.predictedDurationMs;
    const spread = this.estimator.relativeSpread(this.replicaIdsOf(task.poolId));
    return onTimeProbability(remaining, task.request.deadlineMs - elapsed, spread);
  }

  /**
   * The advised wait after a full-queue refusal: the pool's measured time
   * between completions (one place frees per completion); before any
   * completion, a predicted task duration per slot; a second when nothing is
   * known yet.
   */
  retryAfterMs(pool: PoolState): number {
    const measured = pool.completionIntervalMs();
    if (measured !== undefined) return Math.max(1, Math.round(measured));
    const slots = this.registry.inPool(pool.id).reduce((n, r) => n + (r.isReady || r.wakesOnSubmit ? r.slotsTotal : 0), 0);
    const duration = this.estimator.predictDurationMs(this.replicaIdsOf(pool.id), 256);
    if (duration !== undefined && slots > 0) return Math.max(1, Math.round(duration / slots));
    return 1_000;
  }

  /** A task ran to its end on `replicaId`: a throughput sample. */
  recordRun(replicaId: string, task: Task, decodeTimeMs: number): void {
    this.estimator.record(replicaId, {
      firstTokenMs: task.firstTokenAt - task.dispatchedAt,
      tokens: task.tokensOut,
      decodeMs: decodeTimeMs,
    });
  }

  private replicaIdsOf(poolId: string): string[] {
    return this.registry.inPool(poolId).map((r) => r.id);
  }
}

/** The tokens a task is expected to produce: its own estimate when it gave one, else max_tokens. */
function tokensExpected(r: CreateTaskRequest): number {
  return r.expectedTokens !== undefined && r.expectedTokens > 0 ? Math.min(r.expectedTokens, r.maxTokens) : r.maxTokens;
}
