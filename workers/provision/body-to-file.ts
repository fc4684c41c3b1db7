// A response body taken from the moment the answer arrives and appended to a
// file later, every byte that arrived kept even when the connection is cut:
// a cut stream throws away what waits in its own buffer, so chunks are
// taken as they come (flowing mode) and queued here until they are written.
// Those kept bytes are what the next try resumes from.
import type { FileHandle } from "node:fs/promises";
import type http from "node:http";

/** Chunks received but not yet written; above this the response is paused (the disk is slower than the network). */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

export interface BodyOutcome {
  /** Bytes written to the file. */
  written: number;
  /** Why the body ended early (a cut, an abort, `onChunk` refusing), or undefined when it ended normally. */
  error: unknown;
}

export class BodyQueue {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private failure: unknown;
  private wake: (() => void) | undefined;

  /** Starts taking the body of `res` at once; call before the first await after the answer arrived. */
  constructor(private readonly res: http.IncomingMessage) {
    res.on("data", (chunk: Buffer) => {
      this.queue.push(chunk);
      this.queued += chunk.length;
      if (this.queued > MAX_QUEUED_BYTES) res.pause();
      this.notify();
    });
    res.on("end", () => this.finish(undefined));
    res.on("error", (err) => this.finish(err));
    // A connection closed before the body's end, without an error event.
    res.on("close", () => this.finish(res.complete ? undefined : new Error("the connection closed before the body was complete")));
  }

  /**
   * Writes the body to `handle`, calling `onChunk` before each chunk is
   * written (it may throw to stop: that chunk is not written). Resolves once
   * everything received is on disk; never rejects for the body's own failure.
   */
  async writeTo(handle: FileHandle, onChunk: (chunk: Buffer) => void): Promise<BodyOutcome> {
    let written = 0;
    for (;;) {
      const chunk = this.queue.shift();
      if (chunk === undefined) {
        if (this.ended) return { written, error: this.failure };
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      this.queued -= chunk.length;
      try {
        onChunk(chunk);
      } catch (err) {
        this.res.destroy();
        return { written, error: err };
      }
      await handle.write(chunk);
      written += chunk.length;
      if (this.res.isPaused() && this.queued < MAX_QUEUED_BYTES / 2) this.res.resume();
    }
  }

  private finish(failure: unknown): void {
    this.failure ??= failure;
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
