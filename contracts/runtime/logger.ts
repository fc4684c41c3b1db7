import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

/**
 * One JSON-lines logger per process. The message of every line goes under
 * `human`. `component` tells edge, core and each
 * sidecar apart when `llorch up` interleaves their output.
 */
export function createLogger(component: string, bindings: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  const options = {
    level: process.env.LLORCH_LOG_LEVEL ?? "info",
    base: { component, pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Each line's message is a short sentence for people; the other fields are for machines.
    messageKey: "human",
    // Keys that could carry secrets never reach a log line.
    redact: { paths: ["authorization", "*.authorization", "headers.authorization", "api_key", "*.api_key"], censor: "[redacted]" },
  };
  return destination ? pino(options, destination) : pino(options);
}
