import type { GetPoolHealthResponse, ReplicaHealth } from "../../contracts/gen/llama_orch/v1/pool.js";
import type { Replica } from "../registry/replica.js";
import type { PoolState } from "./pool-state.js";

/** GetPoolHealth's answer for one pool: a plain view of its state, its replicas and how many of its tasks run now. */
export function poolHealthView(pool: PoolState, replicas: readonly Replica[], tasksRunning: number, now: number): GetPoolHealthResponse {
  const reloading = pool.reloadState !== "idle";
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
      replicas: [...replicas].sort((a, b) => (a.id < b.id ? -1 : 1)).map(replicaHealth),
      reloadProgress: undefined,
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
    progress: undefined,
  };
}

/** "loading" while the sidecar says so, "busy" when every slot is taken. */
function replicaState(r: Replica): string {
  if (!r.health.live) return "unready";
  if (!r.health.ready) return r.health.lastError.startsWith("loading") ? "loading" : "unready";
  return r.freeSlots === 0 ? "busy" : "ready";
}
