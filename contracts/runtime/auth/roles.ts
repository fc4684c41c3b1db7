/**
 * What a key may do. `client`: the public API (tasks, sessions, reads of the
 * control plane). `admin`: control-plane writes (drain, reload, catalog and
 * artifact writes), and what a client may. `worker`: registering a sidecar
 * with core, and calling a sidecar's WorkerService (core's key).
 */
export const ROLES = ["client", "admin", "worker"] as const;
export type Role = (typeof ROLES)[number];

/** A key's own limit on requests to the edge, instead of --rate-limit-per-second. */
export interface KeyRateLimit {
  perSecond: number;
  burst: number;
}

/** A key's own budgets for the sessions it starts, instead of core's --session-*-budget defaults. */
export interface KeyBudgets {
  tokens?: number;
  timeMs?: number;
  cost?: number;
}

/** Whoever presented a valid key: how logs name them, and what the key may do. */
export interface Principal {
  /** `key:<name>` for a keys-file key, `token:<6 hex of sha256>` for LLORCH_API_KEY, `localhost` for a loopback caller without one. */
  identity: string;
  roles: ReadonlySet<Role>;
  rateLimit?: KeyRateLimit;
  sessionBudgets?: KeyBudgets;
}

export const EVERY_ROLE: ReadonlySet<Role> = new Set(ROLES);

/** An admin also reads and submits; a worker key does worker calls only, so a stolen sidecar key cannot reach the public API. */
export function mayAct(principal: Principal, needed: Role): boolean {
  return principal.roles.has(needed) || (needed === "client" && principal.roles.has("admin"));
}

/** The sentence a refused call gets: who, with which role, and which role it needs. */
export function roleRefusalMessage(principal: Principal, needed: Role, what: string): string {
  const roles = [...principal.roles].join(", ") || "none";
  return `${principal.identity} (role ${roles}) may not ${what}: that needs ${needed === "admin" ? "an" : "a"} ${needed} key`;
}
