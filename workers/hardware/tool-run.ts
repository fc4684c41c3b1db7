// One run of a vendor tool (nvidia-smi, rocm-smi) found on PATH: absent,
// failed (exit code, timeout, signal) with its own words, or its stdout.
import { execFile } from "node:child_process";

export type ToolRun = { outcome: "absent" } | { outcome: "failed"; reason: string } | { outcome: "ok"; stdout: string };

/** Output beyond this is not a device list; the run fails instead of buffering without end. */
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

/**
 * Runs `command args` without a shell, killing it (SIGKILL) after
 * `timeoutMs`. `exitMeaning` turns the tool's documented exit codes into
 * words. A failure's reason quotes the first line the tool printed (stderr,
 * else stdout: nvidia-smi prints its errors on stdout).
 */
export function runTool(
  command: string,
  args: readonly string[],
  timeoutMs: number,
  exitMeaning: (code: number) => string | undefined = () => undefined,
): Promise<ToolRun> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: MAX_OUTPUT_BYTES, windowsHide: true, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (!err) return resolve({ outcome: "ok", stdout });
        // execFile's error: `code` is the exit code (a number) or a spawn errno (a string), `killed` after the timeout.
        const { code, killed, signal } = err as unknown as {
          code?: string | number | null;
          killed?: boolean;
          signal?: NodeJS.Signals | null;
        };
        if (code === "ENOENT") return resolve({ outcome: "absent" });
        const said = firstLine(stderr) || firstLine(stdout);
        const quoted = said ? `: ${said}` : "";
        if (killed && signal === "SIGKILL") return resolve({ outcome: "failed", reason: `${command}: no answer within ${timeoutMs} ms` });
        if (typeof code === "number") {
          const meaning = exitMeaning(code);
          return resolve({ outcome: "failed", reason: `${command} exited with ${code}${meaning ? ` (${meaning})` : ""}${quoted}` });
        }
        if (signal) return resolve({ outcome: "failed", reason: `${command} was killed by ${signal}${quoted}` });
        resolve({ outcome: "failed", reason: `${command}: ${err.message}` });
      },
    );
  });
}

function firstLine(text: string): string {
  return (
    text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .find((l) => l !== "") ?? ""
  ).slice(0, 300);
}
