/**
 * Core's resident set over many short tasks through the whole stack:
 * read at the start, at each quarter and at the end, with the growth per
 * task. Core keeps finished tasks for a while (their logs, for late
 * readers), so growth here is what a busy core carries; the goal is a flat
 * line. Transcripts as the run has them.
 */
import type { Setup } from "./bench-setups.js";
import { rssMb } from "./proc-stats.js";
import { pool, type Figures } from "./stats.js";

const TOKENS = 8;
const CONCURRENCY = 100;

export async function measureCoreRss(setup: Setup, corePid: number, tasks: number): Promise<Figures> {
  const out: Figures = { "core_rss.tasks": tasks, "core_rss.start_mb": rssMb(corePid) };
  for (let quarter = 1; quarter <= 4; quarter++) {
    await pool(tasks / 4, CONCURRENCY, () => setup.stream(TOKENS));
    out[`core_rss.q${quarter}_mb`] = rssMb(corePid);
  }
  out["core_rss.end_mb"] = out["core_rss.q4_mb"]!;
  out["core_rss.kb_per_task"] = ((out["core_rss.end_mb"] - out["core_rss.start_mb"]!) * 1024) / tasks;
  return out;
}
