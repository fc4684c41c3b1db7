/**
 * What /proc says about a process: CPU seconds spent (utime + stime, every
 * thread), resident set, and its children (nginx's workers). The bench reads
 * these before and after each phase; nothing here samples on its own.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

function clockTicks(): number {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
}

const TICKS_PER_SECOND = clockTicks();

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** utime + stime in seconds; fields 14 and 15 of stat(5), counted from the state field (3). */
export function cpuSeconds(pid: number): number {
  const f = statFields(pid);
  return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND;
}

export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

export function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

/** The live processes whose parent is `pid`. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (Number(statFields(Number(entry))[1]) === pid) out.push(Number(entry));
    } catch {
      // gone between the listing and the read
    }
  }
  return out;
}

/** A measured party of a setup ("core", "nginx") and the processes it is made of right now. */
export interface Party {
  role: string;
  pids: () => number[];
}

export type Reading = Map<string, number>;

/** Summed CPU seconds of each party now. */
export function cpuReading(parties: readonly Party[]): Reading {
  return new Map(parties.map((p) => [p.role, p.pids().reduce((s, pid) => s + cpuSeconds(pid), 0)]));
}

/** Summed RSS (MB) of each party now. */
export function rssReading(parties: readonly Party[]): Reading {
  return new Map(parties.map((p) => [p.role, p.pids().reduce((s, pid) => s + rssMb(pid), 0)]));
}

/** after − before, party by party. */
export function difference(before: Reading, after: Reading): Reading {
  return new Map([...after].map(([role, v]) => [role, v - (before.get(role) ?? 0)]));
}
