import { pino, type DestinationStream, type Logger } from "pino";
import { prettyDestination, resolveLogFormat, type LogFormat } from "./log-format.js";

export type { Logger };

/**
 * One logger per process: JSON lines (pino's own shape, the sentence under
 * `msg`) or, for a person at a terminal, readable lines (log-format.ts).
 * `component` tells edge, core and each sidecar apart when `llorch up`
 * interleaves their output. A `destination` (tests) always gets JSON.
 */
export function createLogger(
  component: string,
  bindings: Record<string, unknown> = {},
  destination?: DestinationStream,
  format?: LogFormat,
): Logger {
  const options = {
    level: process.env.LLORCH_LOG_LEVEL ?? "info",
    base: { component, pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Keys that could carry secrets never reach a log line.
    redact: { paths: ["authorization", "*.authorization", "headers.authorization", "api_key", "*.api_key"], censor: "[redacted]" },
  };
  if (destination) return pino(options, destination);
  return resolveLogFormat(format) === "pretty" ? pino(options, prettyDestination()) : pino(options);
}
