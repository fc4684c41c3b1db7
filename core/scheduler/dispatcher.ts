import { requiredFeaturesOf } from "../placement/task-features.js";
import type { CreateTaskRequest } from "../../contracts/gen/llama_orch/v1/task.js";
import type { CoreMetrics } from "../metrics.js";
import {
  metricLabels,
  place,
  type PlacementDecision,
  type PlacementRequest,
  type PlacementWhy,
  type ReplicaSnapshot,
} from "../placement/placement.js";
import type { Replica } from "../registry/replica.js";
import type { ReplicaRegistry } from "../registry/replica-registry.js";
import type { SlotLease } from "../registry/slot-lease.js";
import type { SessionStore } from "../sessions/session-store.js";
import type { Task } from "../tasks/task.js";
import type { PoolState } from "./pool-state.js";
import type { PoolTable } from "./pool-table.js";

/** How far down a queue dispatch looks for work that fits a free replica. */
export const DISPATCH_SCAN_LIMIT = 64;

/** One queued task and the placement request it makes at dispatch time. */
export interface DispatchCandidate {
  taskId: string;
  placement: PlacementRequest;
}

/** Which replica a queued task goes to, and what placement said about the choice. */
export interface DispatchPick {
  taskId: string;
  replicaId: string;
  kvWarm: boolean;
  why: PlacementWhy;
  /** The replica unloaded its model after idling: the task waits while it loads it again. */
  wakes: boolean;
}

/**
 * Which queued work starts now: in queue order, each task on the replica
 * placement ranks first among those with a free slot, skipping work no free
 * replica can take yet, and stopping once no replica has a free slot or
 * `scanLimit` tasks were looked at. Pure: every pick takes a slot in its own
 * copy of the snapshots, so the next pick sees it.
 */
export function planDispatch(
  queued: Iterable<DispatchCandidate>,
  replicas: readonly ReplicaSnapshot[],
  scanLimit = DISPATCH_SCAN_LIMIT,
): DispatchPick[] {
  const load = replicas.map((r) => ({ ...r }));
  const picks: DispatchPick[] = [];
  let scanned = 0;
  for (const candidate of queued) {
    if (scanned++ >= scanLimit || !load.some((r) => (r.ready || r.wakesOnSubmit) && r.activeSlots < r.slotsTotal)) break;
    const decision = place(candidate.placement, load);
    if (decision.outcome !== "placed") continue;
    const chosen = load.find((r) => r.replicaId === decision.replicaId)!;
    picks.push({
      taskId: candidate.taskId,
      replicaId: decision.replicaId,
      kvWarm: decision.kvWarm,
      why: decision.why,
      wakes: !chosen.ready,
    });
    chosen.activeSlots++;
  }
  return picks;
}

/** What placement needs to know about a task. */
export function placementRequestOf(
  request: CreateTaskRequest,
  sessionReplicaId: string | undefined,
  needFreeSlot: boolean,
): PlacementRequest {
  return {
    engine: request.engine,
    modelRef: request.modelRef,
    ctx: request.ctx,
    workload: request.workload,
    overrides: request.placement,
    sessionReplicaId,
    requiredFeatures: requiredFeaturesOf(request),
    needFreeSlot,
  };
}

/** Starts a task on a replica whose slot it now holds. */
export type StartTask = (task: Task, replica: Replica, lease: SlotLease, placed: DispatchPick) => void;

/**
 * Places tasks: at admission (could any replica ever take it?) and at
 * dispatch, where it picks queued work for free replicas, claims their slots
 * and hands each task with its lease to `start`.
 */
export class Dispatcher {
  constructor(
    private readonly registry: ReplicaRegistry,
    private readonly sessions: SessionStore,
    private readonly pools: PoolTable,
    private readonly metrics: CoreMetrics,
    private readonly start: StartTask,
    /** Called after dispatch took work out of a pool's queue. */
    private readonly queueChanged: (pool: PoolState) => void,
  ) {}

  /** Where the task could run, ignoring free slots; counted in the placement metrics. */
  placeAnywhere(request: CreateTaskRequest): PlacementDecision {
    const replicas = this.registry.all();
    const decision = place(placementRequestOf(request, this.lastReplicaOf(request), false), this.snapshots(replicas));
    this.metrics.placementCandidates.set(replicas.length);
    this.metrics.placementDecisions.inc(metricLabels(decision));
    return decision;
  }

  /** Starts queued work of the pool on its free replicas. */
  dispatch(poolId: string): void {
    const pool = this.pools.get(poolId);
    if (!pool || pool.queue.size === 0) return;
    let moved = false;
    for (const pick of planDispatch(this.candidates(pool), this.snapshots(this.registry.inPool(poolId)))) {
      const replica = this.registry.get(pick.replicaId)!;
      const lease = replica.claimSlot();
      if (!lease) continue;
      const task = pool.queue.remove(pick.taskId)!;
      moved = true;
      this.start(task, replica, lease, pick);
    }
    if (moved) this.queueChanged(pool);
  }

  /** The pool's queue in order, each placement request made only when the plan gets to it. */
  private *candidates(pool: PoolState): Generator<DispatchCandidate> {
    for (const [taskId, task] of [...pool.queue.entries()]) {
      yield { taskId, placement: placementRequestOf(task.request, this.lastReplicaOf(task.request), true) };
    }
  }

  private lastReplicaOf(request: CreateTaskRequest): string | undefined {
    return this.sessions.get(request.sessionId)?.lastReplicaId;
  }

  /** Replicas as placement sees them: a draining or reloading pool's replicas say so. */
  private snapshots(replicas: readonly Replica[]): ReplicaSnapshot[] {
    return replicas.map((r) => {
      const pool = this.pools.get(r.poolId);
      return r.snapshot(pool?.draining ?? false, pool !== undefined && pool.reloadState !== "idle");
    });
  }
}
