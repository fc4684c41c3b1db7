/**
 * `--profile`: a second llama-orch stack whose processes run under
 * `node --cpu-prof`, driven through the per-token phase (100 streams × 2,000
 * tokens, `passes` times, after a short warm-up) and stopped, so each
 * writes its profile; returns the top self-time functions of each within
 * the passes. A stack of its own, so profiling
 * costs none of the figures in the table.
 */
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { BenchProcesses } from "./bench-procs.js";
import { orchSetup } from "./bench-setups.js";
import type { ExactnessLedger } from "./exactness.js";
import { measureTokenCost } from "./measure-cost.js";
import { startOrch } from "./orch-stack.js";
import { monotonicUs, topSelfTime, type HotFunction } from "./profile-top.js";

export interface ProfileRun {
  engineUrl: string;
  slots: number;
  transcripts: "on" | "off";
  streams: number;
  tokens: number;
  passes: number;
  top: number;
}

export async function profileOrch(procs: BenchProcesses, o: ProfileRun, ledger: ExactnessLedger): Promise<Record<string, HotFunction[]>> {
  const dir = join(procs.logDir, "profiles");
  mkdirSync(dir, { recursive: true });
  const stack = await startOrch(procs, {
    prefix: "prof-",
    engineUrl: o.engineUrl,
    slots: o.slots,
    transcripts: o.transcripts,
    nodeArgs: ["--cpu-prof", "--cpu-prof-dir", dir],
  });
  const setup = orchSetup(stack, ledger);
  await measureTokenCost(setup, o.streams, o.tokens / 10); // warm-up, outside the window
  const window = { fromUs: monotonicUs(), toUs: 0 };
  for (let i = 0; i < o.passes; i++) await measureTokenCost(setup, o.streams, o.tokens);
  window.toUs = monotonicUs();
  const pids = Object.fromEntries(Object.entries(stack.names).map(([role, name]) => [role, procs.pidOf(name)]));
  // Profiles are written as each process exits: edge first, so core and the sidecar see no new work.
  for (const role of ["edge", "core", "sidecar"] as const) await procs.stop(stack.names[role]);
  const files = readdirSync(dir);
  const out: Record<string, HotFunction[]> = {};
  for (const [role, pid] of Object.entries(pids)) {
    const file = files.find((f) => f.includes(`.${pid}.`) && f.endsWith(".cpuprofile"));
    if (file) out[role] = topSelfTime(join(dir, file), o.top, window);
  }
  return out;
}
