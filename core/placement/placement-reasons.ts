import { Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { hasFeature } from "./task-features.js";
import { canonicalDeviceMask, type PlacementRules } from "./placement-request.js";
import type { ReplicaSnapshot } from "./replica-snapshot.js";

/** In the order they are checked: a replica is rejected for the first one that fails. */
export const REJECT_REASONS = [
  "engine_mismatch",
  "model_mismatch",
  "not_ready",
  "draining",
  "ctx_exceeds_limit",
  "workload_unsupported",
  "device_mask_mismatch",
  "pool_avoided",
  "pool_not_pinned",
  "pool_not_preferred",
  "feature_missing",
  "no_free_slot",
] as const;

export type RejectReason = (typeof REJECT_REASONS)[number];

export interface Rejection {
  replicaId: string;
  poolId: string;
  reason: RejectReason;
}

/** The reasons that come from the client's placement overrides rather than from the task itself. */
export const OVERRIDE_REASONS: readonly RejectReason[] = ["device_mask_mismatch", "pool_avoided", "pool_not_pinned", "pool_not_preferred"];

type Check = (replica: ReplicaSnapshot, rules: PlacementRules) => boolean;

/** What each reason requires of a replica; a Record so no reason can lack its check. */
const PASSES: { readonly [R in RejectReason]: Check } = {
  engine_mismatch: (r, q) => r.engine === q.engine,
  model_mismatch: (r, q) => r.servesAnyModel || r.modelRef === q.modelRef,
  // A replica that unloaded its model after idling takes work: the task loads it again.
  not_ready: (r) => r.ready || r.wakesOnSubmit === true,
  draining: (r) => !r.draining,
  ctx_exceeds_limit: (r, q) => r.ctxMax <= 0 || q.ctx <= r.ctxMax,
  workload_unsupported: (r, q) => supportedWorkloads(r).includes(q.workload),
  device_mask_mismatch: (r, q) => q.deviceMask === undefined || q.deviceMask === canonicalDeviceMask(r.deviceMask),
  pool_avoided: (r, q) => !q.avoid.has(r.poolId),
  pool_not_pinned: (r, q) => q.pin === undefined || (q.pin !== "" && r.poolId === q.pin),
  pool_not_preferred: (r, q) => !q.preferOnly || q.prefer.has(r.poolId),
  feature_missing: (r, q) => missingFeatures(r, q).length === 0,
  no_free_slot: (r, q) => !q.needFreeSlot || r.activeSlots < r.slotsTotal,
};

export function passes(reason: RejectReason, replica: ReplicaSnapshot, rules: PlacementRules): boolean {
  return PASSES[reason](replica, rules);
}

/** undefined means the replica is feasible. */
export function firstFailingReason(replica: ReplicaSnapshot, rules: PlacementRules): RejectReason | undefined {
  return REJECT_REASONS.find((reason) => !PASSES[reason](replica, rules));
}

export function supportedWorkloads(replica: ReplicaSnapshot): readonly Workload[] {
  // A worker that did not say what it supports is a plain completion server.
  return replica.workloads.length > 0 ? replica.workloads : [Workload.WORKLOAD_COMPLETION];
}

/** Features must be explicitly promised ("true", or listed): "false", "" or absent all mean the replica cannot. */
export function missingFeatures(replica: ReplicaSnapshot, rules: PlacementRules): string[] {
  return rules.features.filter((f) => !hasFeature(replica.features, f));
}
