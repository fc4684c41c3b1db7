// Two ways to show a provisioning's progress: log lines for a sidecar (one
// per few seconds, not per chunk) and a redrawn bar on a terminal for a
// person running a command.
import type { ProgressListener, ProvisionProgress } from "./progress.js";

export interface ProgressLog {
  info(fields: Record<string, unknown>, message: string): void;
}

/**
 * Logs a line when the phase or file changes and at most every `intervalMs`
 * while bytes flow, as event `model_provision_progress`.
 */
export function progressLogger(log: ProgressLog, ref: string, intervalMs = 5_000, now: () => number = Date.now): ProgressListener {
  let lastAt = Number.NEGATIVE_INFINITY;
  let lastKey = "";
  return (p) => {
    const key = `${p.phase}\0${p.file ?? ""}`;
    const at = now();
    if (key === lastKey && at - lastAt < intervalMs) return;
    lastKey = key;
    lastAt = at;
    const fields = {
      event: "model_provision_progress",
      model_ref: ref,
      phase: p.phase,
      file: p.file,
      bytes_done: p.bytesDone,
      bytes_total: p.bytesTotal,
      bytes_per_second: p.bytesPerSecond,
    };
    log.info(fields, `${ref}: ${describe(p)}`);
  };
}

export interface TerminalStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

/**
 * Redraws one line (`\r`, then erase to the end of the line) on `stream`
 * when it is a terminal; ends the line at "done". On anything else (a file,
 * a pipe, a log collector) it writes nothing: use progressLogger there.
 */
export function terminalProgress(stream: TerminalStream = process.stderr): ProgressListener {
  if (stream.isTTY !== true) return () => {};
  return (p) => {
    stream.write(`\r${progressLine(p, stream.columns ?? 80)}\x1b[K${p.phase === "done" ? "\n" : ""}`);
  };
}

/** "downloading model.gguf [#######.............]  35%  1.2 GiB / 3.4 GiB  41.0 MiB/s  ETA 55s", cut to `columns`. */
export function progressLine(p: ProvisionProgress, columns = 80): string {
  const file = p.file === undefined ? "" : ` ${shorten(p.file, 32)}`;
  const known = p.bytesTotal !== undefined && p.bytesTotal > 0;
  const fraction = known ? Math.min(1, p.bytesDone / p.bytesTotal!) : 0;
  const amounts = known ? `${formatBytes(p.bytesDone)} / ${formatBytes(p.bytesTotal!)}` : formatBytes(p.bytesDone);
  const rate = p.phase === "downloading" && p.bytesPerSecond > 0 ? `  ${formatBytes(p.bytesPerSecond)}/s` : "";
  const eta =
    p.phase === "downloading" && known && p.bytesPerSecond > 0
      ? `  ETA ${formatDuration((p.bytesTotal! - p.bytesDone) / p.bytesPerSecond)}`
      : "";
  const percent = known ? `${String(Math.floor(fraction * 100)).padStart(3)}%  ` : "";
  const head = `${p.phase}${file} `;
  const tail = ` ${percent}${amounts}${rate}${eta}`;
  const barWidth = Math.max(0, Math.min(30, columns - 1 - head.length - tail.length - 2));
  const filled = Math.round(fraction * barWidth);
  const bar = barWidth > 0 ? `[${"#".repeat(filled)}${".".repeat(barWidth - filled)}]` : "";
  return `${head}${bar}${tail}`.slice(0, Math.max(1, columns - 1));
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function describe(p: ProvisionProgress): string {
  const file = p.file === undefined ? "" : ` ${p.file}`;
  if (p.phase === "resolving") return `resolving${file}`;
  if (p.phase === "done") return `ready (${formatBytes(p.bytesTotal ?? p.bytesDone)})`;
  const known = p.bytesTotal !== undefined && p.bytesTotal > 0;
  const amounts = known
    ? `${Math.floor((100 * p.bytesDone) / p.bytesTotal!)}% (${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal!)})`
    : formatBytes(p.bytesDone);
  const rate = p.phase === "downloading" && p.bytesPerSecond > 0 ? `, ${formatBytes(p.bytesPerSecond)}/s` : "";
  return `${p.phase}${file}: ${amounts}${rate}`;
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `…${text.slice(text.length - max + 1)}`;
}
