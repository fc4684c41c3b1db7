// How a model load shows while it runs: the structured LoadProgress of
// WorkerLoadState (what core puts in pool health) and the sentence health's
// last_error says meanwhile. Pure, from the provisioner's progress reports.
import type { LoadProgress } from "../../contracts/gen/llama_orch/v1/common.js";
import { formatBytes } from "../provision/progress-display.js";
import type { ProvisionProgress } from "../provision/progress.js";

/** The provisioner's progress as the contract's: its "done" is where the engine's loading begins. */
export function loadProgressOf(ref: string, p: ProvisionProgress): LoadProgress {
  if (p.phase === "done") return engineLoadProgress(ref);
  return {
    phase: p.phase,
    bytesDone: p.bytesDone,
    bytesTotal: p.bytesTotal,
    // A rate is only meaningful while bytes arrive; verifying reads the disk.
    bytesPerSecond: p.phase === "downloading" ? p.bytesPerSecond : undefined,
    subject: p.file ?? ref,
  };
}

/** The engine loading the model: how much of its file, when the engine says (the embedded one does). */
export function engineLoadProgress(ref: string, loaded?: { bytesDone: number; bytesTotal: number }): LoadProgress {
  return { phase: "loading", bytesDone: loaded?.bytesDone ?? 0, bytesTotal: loaded?.bytesTotal, bytesPerSecond: undefined, subject: ref };
}

/** "downloading hf:org/repo/m.gguf: 45% (180.0 MiB of 400.0 MiB, 12.0 MiB/s)", "resolving …", "loading …". */
export function progressSentence(ref: string, p: LoadProgress): string {
  if (p.phase === "resolving" || (p.phase === "loading" && !p.bytesTotal)) return `${p.phase} ${ref}`;
  const known = p.bytesTotal !== undefined && p.bytesTotal > 0;
  const rate = p.bytesPerSecond ? `, ${formatBytes(p.bytesPerSecond)}/s` : "";
  const amounts = known
    ? `${Math.floor((100 * p.bytesDone) / p.bytesTotal!)}% (${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal!)}${rate})`
    : `${formatBytes(p.bytesDone)}${rate}`;
  return `${p.phase} ${ref}: ${amounts}`;
}

/** Health's reason while a model is unloaded for idleness: "unloaded after 10 min idle; the next task loads it". */
export function idleSentence(ttlMs: number): string {
  return `unloaded after ${formatDuration(ttlMs)} idle; the next task loads it`;
}

/** "500 ms", "90 s", "10 min", "1.5 h": the largest unit that keeps the figure readable. */
export function formatDuration(ms: number): string {
  const trim = (n: number) => String(Math.round(n * 10) / 10);
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 120_000) return `${trim(ms / 1000)} s`;
  if (ms < 2 * 3_600_000) return `${trim(ms / 60_000)} min`;
  return `${trim(ms / 3_600_000)} h`;
}
