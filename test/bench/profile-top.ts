/**
 * The top self-time functions of a V8 CPU profile (`node --cpu-prof`), as
 * shares of the time the process was busy (idle samples left out), counting
 * only the samples within a window of the monotonic clock (the phase
 * profiled, not the process's start-up): what the bench prints for each
 * profiled process.
 */
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { projectRoot } from "../../contracts/runtime/project-root.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  /** Microseconds on the monotonic clock process.hrtime reads too. */
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  name: string;
  /** Where it is: a file under the project (dist/...), node's internals or a package, and the line. */
  at: string;
  selfPercent: number;
}

function place(url: string, line: number): string {
  if (url === "") return "";
  const path = url.startsWith("file://") ? relative(projectRoot(), new URL(url).pathname) : url;
  return `${path.replace(/^node_modules\//, "")}:${line + 1}`;
}

/** Microseconds now on the clock the profiles' timestamps use. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export function topSelfTime(file: string, count: number, window: { fromUs: number; toUs: number }): HotFunction[] {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, { name: string; at: string; us: number }>();
  let busy = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const us = profile.timeDeltas[i] ?? 0;
    at += us;
    if (at < window.fromUs || at > window.toUs) return;
    if (!node || node.callFrame.functionName === "(idle)") return;
    busy += us;
    const name = node.callFrame.functionName || "(anonymous)";
    const where = place(node.callFrame.url, node.callFrame.lineNumber);
    const key = `${name} ${where}`;
    const entry = self.get(key) ?? { name, at: where, us: 0 };
    entry.us += us;
    self.set(key, entry);
  });
  return [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, count)
    .map((e) => ({ name: e.name, at: e.at, selfPercent: (e.us / busy) * 100 }));
}
