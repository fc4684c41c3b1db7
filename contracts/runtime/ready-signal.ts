import { closeSync, writeSync } from "node:fs";
import type { Logger } from "./logger.js";

/**
 * The file descriptor on which a launcher (`llorch up`, the tests) waits for
 * the ready announcement. The announcement goes there, not only into the
 * log, so a launcher learns readiness at every log level and in every log
 * format.
 */
export const READY_FD_ENV = "LLORCH_READY_FD";

/** The ready line's fields, as the launcher reads them. */
export interface ReadyFields {
  address?: string;
  url?: string;
  metrics_address?: string | null;
  [k: string]: unknown;
}

let announced = false;

/**
 * Logs the component's `event: "ready"` line and, when its launcher gave it
 * a ready pipe, writes the same fields there as one JSON line and closes it.
 * Once per process: after the close the descriptor's number may be reused.
 */
export function announceReady(logger: Logger, fields: ReadyFields, message: string): void {
  logger.info({ event: "ready", ...fields }, message);
  const fd = Number(process.env[READY_FD_ENV]);
  if (announced || !Number.isInteger(fd) || fd < 3) return;
  announced = true;
  // Processes this one starts (engines) must not take the variable for theirs.
  delete process.env[READY_FD_ENV];
  try {
    writeSync(fd, `${JSON.stringify({ event: "ready", ...fields })}\n`);
    closeSync(fd);
  } catch (err) {
    logger.warn({ err, event: "ready_signal_failed" }, `could not tell the launcher on fd ${fd} that this process is ready`);
  }
}
