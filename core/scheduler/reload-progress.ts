import type { LoadProgress } from "../../contracts/gen/llama_orch/v1/common.js";

/**
 * The order a model load goes through (common.proto's LoadProgress.phase):
 * a replica verifying its download is further along than one still
 * downloading, whatever the byte counts say. A phase this build does not know
 * counts as the first, so it is never hidden behind a known one.
 */
const PHASES = ["resolving", "downloading", "verifying", "loading", "done"];

/** How far one replica got: its phase first, then the fraction of bytes done (0 while the total is unknown). */
function stage(p: LoadProgress): [phase: number, fraction: number] {
  const phase = Math.max(0, PHASES.indexOf(p.phase));
  const fraction = p.bytesTotal !== undefined && p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 0;
  return [phase, fraction];
}

/**
 * A pool reload's progress: that of its slowest replica, the one with the
 * least done, since the pool is Ready only once every replica has the model.
 * Replicas that report no progress (done already, or not started) do not
 * count; undefined when none reports any. Ties go to the first given, so the
 * caller's order (by replica id) makes the answer deterministic.
 */
export function slowestProgress(progresses: Iterable<LoadProgress | undefined>): LoadProgress | undefined {
  let slowest: LoadProgress | undefined;
  let slowestStage: [number, number] = [Infinity, Infinity];
  for (const p of progresses) {
    if (p === undefined) continue;
    const s = stage(p);
    if (s[0] < slowestStage[0] || (s[0] === slowestStage[0] && s[1] < slowestStage[1])) {
      slowest = p;
      slowestStage = s;
    }
  }
  return slowest;
}
