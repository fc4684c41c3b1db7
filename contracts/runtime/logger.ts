import { pino, type Logger } from "pino";

export type { Logger };

/**
 * One JSON-lines logger per process. `component` tells edge, core and each
 * sidecar apart when `llorch up` interleaves their output.
 */
export function createLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level: process.env.LLORCH_LOG_LEVEL ?? "info",
    base: { component, pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Keys that could carry secrets never reach a log line.
    redact: { paths: ["authorization", "*.authorization", "headers.authorization", "api_key", "*.api_key"], censor: "[redacted]" },
  });
}
