import { fstatSync } from "node:fs";
import { pino, type DestinationStream, type Logger } from "pino";
import { prettyDestination, resolveLogFormat, type LogFormat } from "./log-format.js";

export type { Logger };

type StdoutDestination = ReturnType<typeof pino.destination>;

/** The process's one stdout destination (pino's own, asynchronous), shared by its loggers. */
let stdout: StdoutDestination | undefined;

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
  if (resolveLogFormat(format) === "pretty") return pino(options, prettyDestination(guardedStdout));
  return pino(options, stdoutGone ? NOWHERE : (stdout ??= pino.destination({ dest: 1, sync: false })));
}

/** Set once stdout's reader is gone (abandonStdoutIfPiped): loggers created later write nowhere. */
let stdoutGone = false;
const NOWHERE: DestinationStream = { write: () => {} };
/** Pretty lines go through process.stdout, which a gone reader would fail with EPIPE. */
const guardedStdout = { isTTY: process.stdout.isTTY, write: (text: string) => stdoutGone || process.stdout.write(text) };

/**
 * Stops writing logs to stdout when what read it is gone (the parent that
 * piped it died): nobody can read them, and at exit pino flushes what is
 * buffered synchronously, which on a broken pipe retries forever
 * (sonic-boom 4 sleeps and retries on EPIPE), so the process would never
 * exit. A stdout that is a file has no reader to lose and keeps its logs.
 */
export function abandonStdoutIfPiped(): void {
  if (fstatSync(1).isFile()) return;
  stdoutGone = true;
  const noop = () => {};
  if (stdout) Object.assign(stdout, { write: () => true, flushSync: noop, flush: noop, end: noop });
  process.stdout.on("error", noop);
}
