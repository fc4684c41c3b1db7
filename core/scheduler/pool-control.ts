import type { CreateTaskRequest } from "../../contracts/gen/llama_orch/v1/task.js";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { GetPoolHealthResponse, PoolSummary } from "../../contracts/gen/llama_orch/v1/pool.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import type { PlacementDecision } from "../placement/placement.js";
import type { ReplicaRegistry } from "../registry/replica-registry.js";
import type { PoolGauges } from "./pool-gauges.js";
import { poolHealthView } from "./pool-health.js";
import { poolSummaryView } from "./pool-summary.js";
import type { PoolState, ReloadState } from "./pool-state.js";
import type { PoolTable } from "./pool-table.js";
import type { TaskLifecycle } from "./task-lifecycle.js";
import { taskLogFields } from "./task-labels.js";
import type { TaskTable } from "./task-table.js";
import type { TaskJournalSink } from "../journal/task-journal.js";

/**
 * What operators and the registry do to pools: drain (also of every pool
 * serving a retired model), reload bookkeeping, the health and summary views, the idle
 * check auto-fetch uses, and moving a pool's queue elsewhere when it lost its
 * last replica.
 */
export class PoolControl {
  constructor(
    private readonly deps: {
      pools: PoolTable;
      registry: ReplicaRegistry;
      tasks: TaskTable;
      lifecycle: TaskLifecycle;
      gauges: PoolGauges;
      logger: Logger;
      journal: () => TaskJournalSink | undefined;
      placeAnywhere: (request: CreateTaskRequest) => PlacementDecision;
      dispatch: (poolId: string) => void;
    },
  ) {}

  /** Nothing queued or running, not draining or reloading: free to be repurposed. */
  isIdle(poolId: string): boolean {
    const pool = this.deps.pools.get(poolId);
    if (!pool || !pool.usable || pool.queue.size > 0) return false;
    return this.deps.tasks.runningIn(poolId) === 0;
  }

  /**
   * Drain: the pool admits nothing from now on; work already admitted may
   * finish until the deadline, then whatever is left ends with
   * POOL_UNAVAILABLE and is cancelled on its replica.
   */
  drain(poolId: string, deadlineMs: number): { inFlight: number; queued: number } {
    const pool = this.deps.pools.require(poolId);
    pool.startDrain(deadlineMs, Date.now(), () => this.endDrain(pool));
    const inFlight = this.deps.tasks.runningIn(poolId);
    this.deps.logger.info(
      { event: "pool_draining", pool_id: poolId, deadline_ms: deadlineMs, in_flight: inFlight, queued: pool.queue.size },
      `pool ${poolId} draining: ${inFlight} running and ${pool.queue.size} queued tasks have ${deadlineMs} ms to finish`,
    );
    this.deps.gauges.replicasReady(poolId);
    return { inFlight, queued: pool.queue.size };
  }

  /** Drains every pool whose replicas serve `modelRef` (a model retired in the catalog). */
  drainPoolsServing(modelRef: string, deadlineMs: number): number {
    let n = 0;
    for (const pool of this.deps.pools.all()) {
      const replicas = this.deps.registry.inPool(pool.id);
      if (replicas.length > 0 && replicas.every((r) => !r.registration.servesAnyModel && r.modelRef === modelRef)) {
        this.drain(pool.id, deadlineMs);
        n++;
      }
    }
    return n;
  }

  /** Reload bookkeeping: a reloading pool is not Ready; a successful reload also ends a drain. */
  setReloadState(poolId: string, state: ReloadState, outcome?: { error?: string; succeeded?: boolean }): void {
    this.deps.pools.require(poolId).setReloadState(state, outcome);
    this.deps.gauges.replicasReady(poolId);
    if (state === "idle") this.deps.dispatch(poolId);
  }

  poolHealth(poolId: string): GetPoolHealthResponse {
    const pool = this.deps.pools.require(poolId);
    return poolHealthView(pool, this.deps.registry.inPool(poolId), this.deps.tasks.runningIn(poolId), Date.now());
  }

  /** Every pool, sorted by id, at a glance. */
  poolSummaries(): PoolSummary[] {
    const now = Date.now();
    return [...this.deps.pools.all()]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((pool) => poolSummaryView(pool, this.deps.registry.inPool(pool.id), this.deps.tasks.runningIn(pool.id), now));
  }

  /** When a pool lost its last replica, its queued work moves to another pool that can serve it, if any. */
  replaceOrphans(poolId: string): void {
    const pool = this.deps.pools.get(poolId);
    if (!pool || pool.queue.size === 0 || this.deps.registry.inPool(poolId).length > 0) return;
    for (const task of pool.queuedTasks()) {
      const decision = this.deps.placeAnywhere(task.request);
      if (decision.outcome !== "placed" || decision.poolId === poolId) continue;
      const target = this.deps.pools.get(decision.poolId);
      if (!target || target.queue.isFull) continue;
      pool.queue.remove(task.id);
      task.moveToPool(target.id);
      this.deps.journal()?.moved(task.id, target.id);
      target.queue.enqueue(task.id, task.request.priority, task);
      this.deps.logger.info(
        { ...taskLogFields(task), event: "replaced" },
        `task ${task.id} moved from pool ${poolId} (no replicas left) to pool ${target.id}`,
      );
      this.deps.dispatch(target.id);
    }
    this.deps.gauges.queueDepth(pool);
  }

  /** Stops the drain timers: core is shutting down. */
  close(): void {
    for (const pool of this.deps.pools.all()) pool.stopDrainTimer();
  }

  private endDrain(pool: PoolState): void {
    const leftovers = this.deps.tasks.unfinished(pool.id);
    const message = `pool ${pool.id} was drained and the task did not finish before the drain deadline`;
    for (const task of leftovers) this.deps.lifecycle.stop(task, ErrorCode.ERROR_CODE_POOL_UNAVAILABLE, message, "operator");
    this.deps.logger.info(
      { event: "pool_drained", pool_id: pool.id, cancelled: leftovers.length },
      `pool ${pool.id} drained; ${leftovers.length} unfinished tasks cancelled`,
    );
  }
}
