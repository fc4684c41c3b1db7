import { Priority } from "../../contracts/gen/llama_orch/v1/common.js";
import type { PoolSummary } from "../../contracts/gen/llama_orch/v1/pool.js";
import type { Replica } from "../registry/replica.js";
import { poolHealthView } from "./pool-health.js";
import type { PoolState } from "./pool-state.js";

/** ListPools' line for one pool: its health's figures (so the two never disagree) and how many replicas it has. */
export function poolSummaryView(pool: PoolState, replicas: readonly Replica[], tasksRunning: number, now: number): PoolSummary {
  const health = poolHealthView(pool, replicas, tasksRunning, now);
  const m = health.metrics!;
  return {
    id: pool.id,
    engine: pool.engine,
    modelRef: m.modelRef,
    live: health.live,
    ready: health.ready,
    draining: health.draining,
    queueDepth: m.queueDepth,
    slotsTotal: m.slotsTotal,
    slotsFree: m.slotsFree,
    tasksRunning,
    replicasTotal: replicas.length,
    replicasReady: replicas.filter((r) => r.isReady).length,
    queuedInteractive: pool.queue.sizeOf(Priority.PRIORITY_INTERACTIVE),
    queuedBatch: pool.queue.sizeOf(Priority.PRIORITY_BATCH),
  };
}
