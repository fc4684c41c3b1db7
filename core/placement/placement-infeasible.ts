import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { engines, workloads } from "../../contracts/enums.js";
import { fieldOfFeature } from "./task-features.js";
import { missingFeatures, OVERRIDE_REASONS, passes, REJECT_REASONS, supportedWorkloads, type RejectReason } from "./placement-reasons.js";
import type { PlacementRules } from "./placement-request.js";
import type { ReplicaSnapshot } from "./replica-snapshot.js";

export interface Infeasibility {
  code: ErrorCode;
  message: string;
  /** JSON pointer to the request field at fault, for INVALID_PARAMS. */
  field?: string;
}

export interface Rejected {
  replica: ReplicaSnapshot;
  reason: RejectReason;
}

/**
 * Why no replica can take the task, as the most useful error for the client.
 * The overrides first narrow which replicas count; among those, the replica
 * that got furthest through the checks names the problem, because that is the
 * one closest to working (a busy replica beats an unready one: waiting helps).
 * Every message is built from sorted, de-duplicated facts so it does not
 * depend on the order the replicas came in.
 */
export function explainInfeasible(rules: PlacementRules, rejected: readonly Rejected[]): Infeasibility {
  const what = `${engines.name(rules.engine)}/${rules.modelRef}`;
  if (rules.pin === "") {
    return {
      code: ErrorCode.ERROR_CODE_INVALID_PARAMS,
      field: "/placement/pin_pool_id",
      message: "placement mode pin needs a pin_pool_id; name the pool to pin to, or use mode prefer or auto",
    };
  }
  const serving = rejected.filter(({ reason }) => reason !== "engine_mismatch" && reason !== "model_mismatch");
  if (serving.length === 0) return noPoolServes(rules, rejected);
  const allowed = serving.filter(({ replica }) => OVERRIDE_REASONS.every((o) => passes(o, replica, rules)));
  if (allowed.length === 0) return excludedByOverrides(rules, what, serving);
  return furthestProblem(rules, what, allowed);
}

/** The problem of the allowed replicas that got furthest through the checks: the ones closest to working. */
function furthestProblem(rules: PlacementRules, what: string, allowed: readonly Rejected[]): Infeasibility {
  const stage = Math.max(...allowed.map(({ reason }) => REJECT_REASONS.indexOf(reason)));
  const furthest = allowed.filter(({ reason }) => REJECT_REASONS.indexOf(reason) === stage).map(({ replica }) => replica);
  const scope = narrowed(rules) ? " within the placement overrides" : "";
  switch (REJECT_REASONS[stage]) {
    case "not_ready":
    case "draining":
      return notReady(`${what}${scope}`, allowed);
    case "ctx_exceeds_limit": {
      const largest = Math.max(...furthest.map((r) => r.ctxMax));
      return {
        code: ErrorCode.ERROR_CODE_INVALID_PARAMS,
        field: "/ctx",
        message: `ctx ${rules.ctx} exceeds the largest context served for ${what}${scope} (${largest}); ask for ctx ${largest} or less`,
      };
    }
    case "workload_unsupported":
      return {
        code: ErrorCode.ERROR_CODE_POOL_UNAVAILABLE,
        message:
          `no ready replica serving ${what}${scope} supports workload ${workloads.name(rules.workload)}; ` +
          `they support ${list(furthest.flatMap((r) => supportedWorkloads(r).map(workloads.name)))}`,
      };
    case "feature_missing":
      return featureMissing(rules, `${what}${scope}`, furthest);
    default:
      // Only capacity is left (no_free_slot): the task can run once a slot frees up.
      return allBusy(what, furthest);
  }
}

/** Required features no replica has: a request parameter is the client's to change, an engine feature (seed) the operator's. */
function featureMissing(rules: PlacementRules, scoped: string, furthest: readonly ReplicaSnapshot[]): Infeasibility {
  const missing = [...new Set(furthest.flatMap((r) => missingFeatures(r, rules)))].sort();
  const field = missing.map(fieldOfFeature).find((f) => f !== undefined);
  if (field !== undefined) return unhonouredParameter(scoped, missing, field, furthest);
  return {
    code: ErrorCode.ERROR_CODE_POOL_UNAVAILABLE,
    message:
      `no ready replica serving ${scoped} has the required feature(s) ` +
      `${list(missing)} set to "true"; drop the requirement or add a worker that supports it`,
  };
}

/** A request parameter no replica can honour is the client's to change: INVALID_PARAMS, naming it and what is honoured. */
function unhonouredParameter(scoped: string, missing: string[], field: string, replicas: readonly ReplicaSnapshot[]): Infeasibility {
  const honoured = list(replicas.flatMap((r) => (r.features["sampling"] ?? "").split(",").filter(Boolean))) || "nothing";
  const wanted = missing.map((k) => (k === "chat" ? "messages (a chat)" : k)).join(", ");
  return {
    code: ErrorCode.ERROR_CODE_INVALID_PARAMS,
    field,
    message: `no replica serving ${scoped} honours ${wanted}; their sampling honours ${honoured}; drop it or use an engine that honours it`,
  };
}

/** Waiting helps: the replicas are starting or draining. */
function notReady(scoped: string, allowed: readonly Rejected[]): Infeasibility {
  const starting = allowed.filter(({ reason }) => reason === "not_ready").length;
  const draining = allowed.filter(({ reason }) => reason === "draining").length;
  const state = [
    starting > 0 ? `${count(starting, "replica")} not ready yet` : "",
    draining > 0 ? `${count(draining, "replica")} draining` : "",
  ];
  return {
    code: ErrorCode.ERROR_CODE_POOL_UNREADY,
    message: `no replica serving ${scoped} is ready (${state.filter(Boolean).join(", ")}); retry shortly`,
  };
}

function allBusy(what: string, furthest: readonly ReplicaSnapshot[]): Infeasibility {
  const used = furthest.reduce((n, r) => n + r.activeSlots, 0);
  const total = furthest.reduce((n, r) => n + r.slotsTotal, 0);
  return {
    code: ErrorCode.ERROR_CODE_REPLICA_EXHAUSTED,
    message: `all ${count(furthest.length, "eligible replica")} of ${what} are busy (${used} of ${total} slots in use); retry when a slot frees up`,
  };
}

function noPoolServes(rules: PlacementRules, rejected: readonly Rejected[]): Infeasibility {
  const engine = engines.name(rules.engine);
  const sameEngine = rejected.filter(({ reason }) => reason === "model_mismatch").map(({ replica }) => replica.modelRef);
  const hint = sameEngine.length === 0 ? `no ${engine} replica is registered` : `${engine} replicas serve ${list(sameEngine)}`;
  return {
    code: ErrorCode.ERROR_CODE_POOL_UNAVAILABLE,
    message: `no pool serves engine ${engine} with model ${rules.modelRef}; ${hint}`,
  };
}

function excludedByOverrides(rules: PlacementRules, what: string, serving: readonly Rejected[]): Infeasibility {
  const excludedBy = (o: RejectReason): ReplicaSnapshot[] =>
    serving.filter(({ replica }) => OVERRIDE_REASONS.find((first) => !passes(first, replica, rules)) === o).map(({ replica }) => replica);
  const fragments: string[] = [];
  const byMask = excludedBy("device_mask_mismatch");
  if (byMask.length > 0) {
    fragments.push(
      `require_device_mask "${rules.deviceMask}" excludes the replicas on device mask(s) ${list(byMask.map((r) => `"${r.deviceMask}"`))}`,
    );
  }
  const avoided = excludedBy("pool_avoided");
  if (avoided.length > 0) fragments.push(`avoid_pools excludes pool(s) ${pools(avoided)}`);
  const unpinned = excludedBy("pool_not_pinned");
  if (unpinned.length > 0) fragments.push(`pin_pool_id "${rules.pin}" excludes pool(s) ${pools(unpinned)} and a pin never falls back`);
  const unpreferred = excludedBy("pool_not_preferred");
  if (unpreferred.length > 0) {
    fragments.push(`prefer_pools ${list([...rules.prefer])} with allow_fallback=false excludes pool(s) ${pools(unpreferred)}`);
  }
  return {
    code: ErrorCode.ERROR_CODE_POOL_UNAVAILABLE,
    message: `no replica serving ${what} is allowed by the placement overrides: ${fragments.join("; ")}; relax the overrides to place the task`,
  };
}

function narrowed(rules: PlacementRules): boolean {
  return rules.deviceMask !== undefined || rules.avoid.size > 0 || rules.pin !== undefined || rules.preferOnly;
}

function pools(replicas: readonly ReplicaSnapshot[]): string {
  return list(replicas.map((r) => r.poolId));
}

function list(values: readonly string[]): string {
  return [...new Set(values)].sort().join(", ");
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
