import { Writable } from "node:stream";
import { pino } from "pino";
import { createLogger, type Logger } from "../../contracts/runtime/logger.js";

/** A logger that writes nothing, for code under test that must log somewhere. */
export const quietLogger = pino({ level: "silent" });

/** A logger configured as the processes' own, whose JSON lines are kept for assertions. */
export function logCapture(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger("worker", {}, sink), lines };
}
