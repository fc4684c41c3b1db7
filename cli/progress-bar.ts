import { formatBytes } from "../workers/provision/progress-display.js";

/** A progress object as the public API shows it (pool health's, a catalog verification's). */
export interface ProgressJson {
  phase?: string;
  bytes_done?: number;
  bytes_total?: number;
  bytes_per_second?: number;
  subject?: string;
}

/**
 * "downloading b.gguf [#####...............]  25%  95.4 MiB / 381.5 MiB  4.8 MiB/s";
 * without a known total only the phase, subject and bytes so far.
 */
export function progressBar(p: ProgressJson, width = 20): string {
  const head = [p.phase ?? "working", p.subject].filter(Boolean).join(" ");
  const done = p.bytes_done ?? 0;
  const rate = p.bytes_per_second ? `  ${formatBytes(p.bytes_per_second)}/s` : "";
  if (!p.bytes_total) return `${head}${done > 0 ? `  ${formatBytes(done)}` : ""}${rate}`;
  const fraction = Math.min(1, done / p.bytes_total);
  const filled = Math.round(fraction * width);
  const percent = `${String(Math.floor(fraction * 100)).padStart(3)}%`;
  return `${head} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${percent}  ${formatBytes(done)} / ${formatBytes(p.bytes_total)}${rate}`;
}

/** Redraws one line on a terminal (`\r`, erase to the end); on anything else draws nothing. */
export function redrawLine(stream: { isTTY?: boolean; write(text: string): unknown }): (line: string | undefined) => void {
  if (stream.isTTY !== true) return () => {};
  return (line) => void stream.write(line === undefined ? "\r\x1b[K" : `\r${line}\x1b[K`);
}
