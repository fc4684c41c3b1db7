import { Priority } from "../../contracts/gen/llama_orch/v1/common.js";
import { priorities } from "../../contracts/enums.js";
import type { CoreMetrics } from "../metrics.js";
import type { ReplicaRegistry } from "../registry/replica-registry.js";
import type { PoolState } from "./pool-state.js";
import type { PoolTable } from "./pool-table.js";
import { poolLabels } from "./task-labels.js";

/** The per-pool gauges: queue depth by priority, and replicas ready. */
export class PoolGauges {
  constructor(
    private readonly metrics: CoreMetrics,
    private readonly registry: ReplicaRegistry,
    private readonly pools: PoolTable,
  ) {}

  queueDepth(pool: PoolState): void {
    const labels = poolLabels(pool, this.registry.inPool(pool.id));
    for (const p of [Priority.PRIORITY_INTERACTIVE, Priority.PRIORITY_BATCH]) {
      this.metrics.queueDepth.set({ ...labels, priority: priorities.name(p) }, pool.queue.sizeOf(p));
    }
  }

  /** A draining or reloading pool has no ready replicas, whatever they report. */
  replicasReady(poolId: string): void {
    const pool = this.pools.get(poolId);
    const usable = pool !== undefined && pool.usable;
    this.metrics.replicasReady.set({ pool_id: poolId }, usable ? this.registry.inPool(poolId).filter((r) => r.isReady).length : 0);
  }
}
