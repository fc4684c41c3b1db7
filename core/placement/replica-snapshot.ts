import type { Engine, Workload } from "../../contracts/gen/llama_orch/v1/common.js";

/**
 * A plain, frozen-in-time view of one replica, so placement can be a pure
 * function: the caller copies what it knows from the registry, placement never
 * reaches back into live objects.
 */
export interface ReplicaSnapshot {
  /** Unique across the snapshot set; the last tie-breaker of the ranking. */
  replicaId: string;
  poolId: string;
  engine: Engine;
  modelRef: string;
  servesAnyModel: boolean;
  ready: boolean;
  /**
   * Not ready, but only because its model was unloaded after idling: a task
   * sent here loads it again and waits for that. Placeable, after every ready
   * replica. Absent = false.
   */
  wakesOnSubmit?: boolean;
  draining: boolean;
  /** 0 = unknown (treated as unlimited). */
  ctxMax: number;
  /** Empty = unknown (treated as completion only). */
  workloads: Workload[];
  /** e.g. "cpu", "0", "0,1". */
  deviceMask: string;
  vramFreeBytes: number;
  activeSlots: number;
  slotsTotal: number;
  features: Record<string, string>;
}
