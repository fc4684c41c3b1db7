import { Priority } from "../../contracts/gen/llama_orch/v1/common.js";
import { priorities } from "../../contracts/enums.js";
import type { CoreMetrics } from "../metrics.js";
import type { Replica } from "../registry/replica.js";
import type { ReplicaRegistry } from "../registry/replica-registry.js";
import type { PoolState } from "./pool-state.js";
import type { PoolTable } from "./pool-table.js";
import { poolLabels, replicaSeriesLabels } from "./task-labels.js";

type PoolLabels = ReturnType<typeof poolLabels>;

/** The per-pool gauges: queue depth by priority, and replicas ready; and each ready replica's token series. */
export class PoolGauges {
  /** The labels each pool's queue_depth was last set under: a pool's engine version changes when its first replica describes itself. */
  private readonly depthLabels = new Map<string, PoolLabels>();

  constructor(
    private readonly metrics: CoreMetrics,
    private readonly registry: ReplicaRegistry,
    private readonly pools: PoolTable,
  ) {}

  queueDepth(pool: PoolState): void {
    const labels = poolLabels(pool, this.registry.inPool(pool.id));
    const before = this.depthLabels.get(pool.id);
    this.depthLabels.set(pool.id, labels);
    for (const p of [Priority.PRIORITY_INTERACTIVE, Priority.PRIORITY_BATCH]) {
      const priority = priorities.name(p);
      // The old series would keep its last depth forever beside the new one.
      if (before && before.engine_version !== labels.engine_version) this.metrics.queueDepth.remove({ ...before, priority });
      this.metrics.queueDepth.set({ ...labels, priority }, pool.queue.sizeOf(p));
    }
  }

  /**
   * A ready replica's token counters exist from 0, so rate() and increase()
   * see its first tokens (they miss the tokens a series appears with).
   */
  replicaSeries(replica: Replica): void {
    if (!replica.isReady) return;
    const labels = replicaSeriesLabels(replica);
    this.metrics.tokensOut.inc(labels, 0);
    this.metrics.tokensIn.inc(labels, 0);
  }

  /** A draining or reloading pool has no ready replicas, whatever they report. */
  replicasReady(poolId: string): void {
    const pool = this.pools.get(poolId);
    const usable = pool !== undefined && pool.usable;
    this.metrics.replicasReady.set({ pool_id: poolId }, usable ? this.registry.inPool(poolId).filter((r) => r.isReady).length : 0);
  }
}
