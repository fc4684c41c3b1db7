// What SIGTERM means for every component (core, the edge, a sidecar): stop
// taking new work at once, let the work in hand finish for up to the
// shutdown grace, then end what is left with a retriable error and exit.

import type { FlagSpec } from "./flag-table.js";
import { flagInteger } from "./flag-values.js";

export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

/** How often a draining component looks whether its work is done. */
const DRAIN_POLL_MS = 50;

/** The --shutdown-grace-ms row each component's flag table carries. */
export function shutdownGraceFlag<C extends { shutdownGraceMs?: number }>(what: string): FlagSpec<C> {
  return {
    name: "shutdown-grace-ms",
    arg: "N",
    help: `on SIGTERM, how long ${what} may finish before what is left ends (default ${DEFAULT_SHUTDOWN_GRACE_MS})`,
    apply: (c, v, f) => (c.shutdownGraceMs = flagInteger(f, v, 0)),
  };
}

/** Resolves true once `idle()` holds, or false when `graceMs` passed first. */
export async function drained(idle: () => boolean, graceMs: number): Promise<boolean> {
  const deadline = Date.now() + graceMs;
  while (!idle()) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, Math.min(DRAIN_POLL_MS, Math.max(1, deadline - Date.now()))));
  }
  return true;
}
