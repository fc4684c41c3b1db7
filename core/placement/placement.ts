import type { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { explainInfeasible, type Rejected } from "./placement-infeasible.js";
import { firstFailingReason, type Rejection } from "./placement-reasons.js";
import { resolveRules, type PlacementRequest, type PlacementRules } from "./placement-request.js";
import type { ReplicaSnapshot } from "./replica-snapshot.js";

export type { PlacementRequest } from "./placement-request.js";
export { REJECT_REASONS, type RejectReason, type Rejection } from "./placement-reasons.js";
export type { ReplicaSnapshot } from "./replica-snapshot.js";

/** The first ranking criterion that separated the winner from the runner-up. */
export type PlacementWhy =
  "model_loaded" | "preferred_pool" | "session_affinity" | "most_free_vram" | "fewest_active_slots" | "replica_id" | "only_candidate";

export type PlacementDecision =
  | {
      outcome: "placed";
      replicaId: string;
      poolId: string;
      /** Feasible replica ids, best first. */
      ranked: string[];
      pinned: boolean;
      /** prefer_pools could not be honoured and the task went to another pool. */
      fallback: boolean;
      /** Placed on the session's previous replica, so its KV cache is warm. */
      kvWarm: boolean;
      why: PlacementWhy;
      rejections: Rejection[];
    }
  | {
      outcome: "infeasible";
      code: ErrorCode;
      message: string;
      field?: string;
      pinned: boolean;
      rejections: Rejection[];
    };

/**
 * Chooses a replica for a task, or says precisely why none fits. Pure and
 * deterministic: the same request and the same replicas in any order give a
 * deep-equal decision (rejections are listed by replica id).
 */
export function place(request: PlacementRequest, replicas: readonly ReplicaSnapshot[]): PlacementDecision {
  const rules = resolveRules(request);
  const feasible: ReplicaSnapshot[] = [];
  const rejected: Rejected[] = [];
  for (const replica of [...replicas].sort((a, b) => compare(a.replicaId, b.replicaId))) {
    const reason = firstFailingReason(replica, rules);
    if (reason === undefined) feasible.push(replica);
    else rejected.push({ replica, reason });
  }
  const rejections = rejected.map(({ replica, reason }) => ({ replicaId: replica.replicaId, poolId: replica.poolId, reason }));
  const pinned = rules.pin !== undefined;
  if (feasible.length === 0) return { outcome: "infeasible", ...explainInfeasible(rules, rejected), pinned, rejections };

  const order = criteria(rules);
  const ranked = feasible.sort((a, b) => firstDifference(order, a, b)?.[1] ?? 0);
  const [winner, runnerUp] = ranked as [ReplicaSnapshot, ...ReplicaSnapshot[]];
  return {
    outcome: "placed",
    replicaId: winner.replicaId,
    poolId: winner.poolId,
    ranked: ranked.map((r) => r.replicaId),
    pinned,
    fallback: rules.prefer.size > 0 && !rules.prefer.has(winner.poolId),
    kvWarm: warm(winner, rules),
    // Equal replica ids (a caller bug) separate nothing; report the last criterion.
    why: runnerUp === undefined ? "only_candidate" : (firstDifference(order, winner, runnerUp)?.[0] ?? "replica_id"),
    rejections,
  };
}

/** Labels for placement_decisions_total; a fixed, small set of values. */
export function metricLabels(decision: PlacementDecision): {
  outcome: "placed" | "infeasible";
  pinned: "true" | "false";
  fallback: "true" | "false";
} {
  return {
    outcome: decision.outcome,
    pinned: decision.pinned ? "true" : "false",
    fallback: decision.outcome === "placed" && decision.fallback ? "true" : "false",
  };
}

type Criterion = readonly [Exclude<PlacementWhy, "only_candidate">, (a: ReplicaSnapshot, b: ReplicaSnapshot) => number];

/** The session's previous replica, its KV cache still there: a replica that unloaded its model lost it. */
function warm(r: ReplicaSnapshot, rules: PlacementRules): boolean {
  return r.replicaId === rules.sessionReplicaId && r.ready;
}

/**
 * The ranking, best first. A replica with its model loaded leads, because one
 * that must load it again first (unloaded after idling) makes the task wait
 * seconds to minutes, more than any other criterion saves; preferred pools
 * next because prefer_pools is an explicit client choice; session affinity
 * next because a warm KV cache saves more than any load difference; then free
 * VRAM, then load; the replica id makes the order total so equal replicas
 * never depend on input order.
 */
function criteria(rules: PlacementRules): readonly Criterion[] {
  const loaded = (r: ReplicaSnapshot): number => (r.ready ? 1 : 0);
  const preferred = (r: ReplicaSnapshot): number => (rules.prefer.has(r.poolId) ? 1 : 0);
  const affine = (r: ReplicaSnapshot): number => (warm(r, rules) ? 1 : 0);
  return [
    ["model_loaded", (a, b) => loaded(b) - loaded(a)],
    ["preferred_pool", (a, b) => preferred(b) - preferred(a)],
    ["session_affinity", (a, b) => affine(b) - affine(a)],
    ["most_free_vram", (a, b) => compare(b.vramFreeBytes, a.vramFreeBytes)],
    ["fewest_active_slots", (a, b) => compare(a.activeSlots, b.activeSlots)],
    ["replica_id", (a, b) => compare(a.replicaId, b.replicaId)],
  ];
}

function firstDifference(order: readonly Criterion[], a: ReplicaSnapshot, b: ReplicaSnapshot): [Criterion[0], number] | undefined {
  for (const [why, cmp] of order) {
    const c = cmp(a, b);
    if (c !== 0) return [why, c];
  }
  return undefined;
}

/** Plain code-unit order, not locale order, so every host ranks alike. */
function compare<T extends string | number>(a: T, b: T): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
