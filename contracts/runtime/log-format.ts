import type { DestinationStream } from "pino";
import type { FlagSpec } from "./flag-table.js";
import { flagChoice } from "./flag-values.js";

/** JSON lines for machines (a pipe, a file, a log collector); one readable line per entry for a person at a terminal. */
export type LogFormat = "pretty" | "json";

export const LOG_FORMATS: readonly LogFormat[] = ["pretty", "json"];
export const LOG_FORMAT_ENV = "LLORCH_LOG_FORMAT";

/**
 * The format asked for on the command line, else in LLORCH_LOG_FORMAT, else
 * pretty when stdout is a terminal and JSON otherwise, so nothing changes
 * for a program reading the output.
 */
export function resolveLogFormat(
  asked: LogFormat | undefined,
  env: NodeJS.ProcessEnv = process.env,
  stdout: { isTTY?: boolean } = process.stdout,
): LogFormat {
  if (asked) return asked;
  const fromEnv = env[LOG_FORMAT_ENV];
  if (fromEnv) return flagChoice(LOG_FORMAT_ENV, fromEnv, LOG_FORMATS);
  return stdout.isTTY === true ? "pretty" : "json";
}

/** The `--log-format` row every component's flag table carries. */
export function logFormatFlag<C extends { logFormat?: LogFormat }>(): FlagSpec<C> {
  return {
    name: "log-format",
    arg: "pretty|json",
    help: `log lines as text or JSON (default: ${LOG_FORMAT_ENV}, else pretty on a terminal, JSON otherwise)`,
    apply: (c, v, f) => (c.logFormat = flagChoice(f, v, LOG_FORMATS)),
  };
}

const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: "TRACE", color: "\x1b[90m" },
  20: { name: "DEBUG", color: "\x1b[36m" },
  30: { name: "INFO ", color: "\x1b[32m" },
  40: { name: "WARN ", color: "\x1b[33m" },
  50: { name: "ERROR", color: "\x1b[31m" },
  60: { name: "FATAL", color: "\x1b[35m" },
};

/**
 * One pino JSON line as "12:00:01.234 INFO  core  task … admitted …": the
 * time, level, who logged it and the sentence; an error's stack follows on
 * its own lines. The other fields stay in the JSON format for machines.
 */
export function prettyLine(line: string, color = false): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith("\n") ? line : `${line}\n`;
  }
  const level = LEVELS[Number(entry["level"])] ?? { name: String(entry["level"]).padEnd(5), color: "" };
  const time = typeof entry["time"] === "string" ? entry["time"].slice(11, 23) : "";
  const who = [entry["component"], entry["replica_id"]].filter((v) => typeof v === "string" && v !== "").join(" ");
  const paint = (text: string, code: string) => (color && code ? `${code}${text}\x1b[0m` : text);
  const err = entry["err"] as { stack?: unknown } | undefined;
  const stack = typeof err?.stack === "string" ? `\n${paint(err.stack, "\x1b[90m")}` : "";
  return `${paint(time, "\x1b[90m")} ${paint(level.name, level.color)} ${who}  ${typeof entry["msg"] === "string" ? entry["msg"] : ""}${stack}\n`;
}

/** A pino destination writing prettyLine's text to `out`, in colour when `out` is a terminal. */
export function prettyDestination(out: { write(text: string): unknown; isTTY?: boolean } = process.stdout): DestinationStream {
  const color = out.isTTY === true;
  return { write: (line: string) => void out.write(prettyLine(line, color)) };
}
