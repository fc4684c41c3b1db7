import type { GetPoolHealthResponse, ReplicaHealth } from "../../contracts/gen/llama_orch/v1/pool.js";
import type { Replica } from "../registry/replica.js";
import type { PoolState } from "./pool-state.js";
import { slowestProgress } from "./reload-progress.js";

/** GetPoolHealth's answer for one pool: a plain view of its state, its replicas and how many of its tasks run now. */
export function poolHealthView(pool: PoolState, replicas: readonly Replica[], tasksRunning: number, now: number): GetPoolHealthResponse {
  const reloading = pool.reloadState !== "idle";
  const sorted = [...replicas].sort((a, b) => (a.id < b.id ? -1 : 1));
  return {
    live: replicas.some((r) => r.health.live),
    ready: !reloading && replicas.some((r) => r.isReady),
    draining: pool.draining,
    metrics: {
      queueDepth: pool.queue.size,
      slotsTotal: replicas.reduce((n, r) => n + r.slotsTotal, 0),
      slotsFree: replicas.reduce((n, r) => n + (r.isReady ? r.freeSlots : 0), 0),
      modelRef: replicas[0]?.modelRef ?? "",
      engine: pool.engine,
      reloadState: pool.reloadState,
      lastReloadError: pool.lastReloadError,
      tasksRunning,
      drainDeadlineMs: pool.drainDeadlineAt === undefined ? undefined : Math.max(0, pool.drainDeadlineAt - now),
      replicas: sorted.map(replicaHealth),
      reloadProgress: reloading ? slowestProgress(sorted.map((r) => r.load?.progress)) : undefined,
    },
  };
}

function replicaHealth(r: Replica): ReplicaHealth {
  return {
    replicaId: r.id,
    address: r.registration.address,
    live: r.health.live,
    ready: r.isReady,
    state: replicaState(r),
    lastError: r.health.lastError,
    slotsTotal: r.slotsTotal,
    slotsFree: r.freeSlots,
    modelRef: r.modelRef,
    engineVersion: r.engineVersion,
    deviceMask: r.info?.deviceMask ?? "",
    vramTotalBytes: r.props.vramTotalBytes,
    vramFreeBytes: r.props.vramFreeBytes,
    progress: r.load?.progress,
  };
}

/**
 * "loading" while the sidecar says so (or reports load progress), "unloaded"
 * when its model was unloaded after idling and the next task loads it again,
 * "busy" when every slot is taken.
 */
function replicaState(r: Replica): string {
  if (!r.health.live) return "unready";
  if (r.wakesOnSubmit) return "unloaded";
  if (!r.health.ready) return r.load?.progress !== undefined || r.health.lastError.startsWith("loading") ? "loading" : "unready";
  return r.freeSlots === 0 ? "busy" : "ready";
}
