import { Workload, type Engine } from "../../contracts/gen/llama_orch/v1/common.js";
import { PlacementMode, type PlacementOverrides } from "../../contracts/gen/llama_orch/v1/task.js";

export interface PlacementRequest {
  engine: Engine;
  modelRef: string;
  ctx: number;
  workload: Workload;
  overrides?: PlacementOverrides;
  /** The replica that served this session last (KV cache warm there), if any. */
  sessionReplicaId?: string;
  /** Feature keys the task needs, e.g. ["seed"] for determinism: strict (value must be "true"). */
  requiredFeatures?: string[];
  /** At dispatch time only replicas with a free slot count; at admission time (false) capacity is ignored. */
  needFreeSlot: boolean;
}

/**
 * The request with its overrides resolved once into the rules they imply, so
 * the checks and the explanations read the same facts and never re-derive
 * proto defaults (mode 0, allow_fallback unset) on their own.
 */
export interface PlacementRules {
  engine: Engine;
  modelRef: string;
  /** 0 = the client did not ask for a context size. */
  ctx: number;
  workload: Workload;
  /** Canonical form (see canonicalDeviceMask); undefined when not required. */
  deviceMask: string | undefined;
  avoid: ReadonlySet<string>;
  /** Set only in mode PIN; "" (pin without a pool) matches nothing. */
  pin: string | undefined;
  /** Preferred pools; empty when pinned, since a pin already names the one pool. */
  prefer: ReadonlySet<string>;
  /** prefer_pools with allow_fallback=false is a filter, not an ordering. */
  preferOnly: boolean;
  features: readonly string[];
  needFreeSlot: boolean;
  sessionReplicaId: string | undefined;
}

export function resolveRules(request: PlacementRequest): PlacementRules {
  const o = request.overrides;
  const pin = o?.mode === PlacementMode.PLACEMENT_MODE_PIN ? o.pinPoolId : undefined;
  // prefer_pools counts in PREFER, AUTO and UNSPECIFIED alike: a client that
  // lists preferred pools means it, whatever mode it left at the default.
  const prefer = new Set(pin === undefined ? (o?.preferPools ?? []) : []);
  const mask = canonicalDeviceMask(o?.requireDeviceMask ?? "");
  return {
    engine: request.engine,
    modelRef: request.modelRef,
    ctx: request.ctx,
    // proto3 sends 0 for "not set"; the product's default workload is completion.
    workload: request.workload === Workload.WORKLOAD_UNSPECIFIED ? Workload.WORKLOAD_COMPLETION : request.workload,
    deviceMask: mask === "" ? undefined : mask,
    avoid: new Set(o?.avoidPools ?? []),
    pin,
    prefer,
    preferOnly: prefer.size > 0 && o?.allowFallback === false,
    features: request.requiredFeatures ?? [],
    needFreeSlot: request.needFreeSlot,
    sessionReplicaId: request.sessionReplicaId,
  };
}

/**
 * "1, 0" and "0,1" name the same devices; comparing canonical forms keeps the
 * match exact (same device set, no spillover) without failing on spelling.
 */
export function canonicalDeviceMask(mask: string): string {
  const devices = mask
    .split(",")
    .map((d) => d.trim())
    .filter((d) => d !== "");
  return [...new Set(devices)].sort().join(",");
}
