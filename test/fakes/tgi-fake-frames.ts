// How the TGI fake writes its SSE (see tgi-fake.ts for the sources): axum's
// `data:{json}\n\n` frames, whole, in pieces or all at once, with keep-alive
// comments while a stream is open.
import type http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { TgiFakeBehaviour } from "./tgi-fake.js";

/** Writes SSE to one response the way the behaviour asks: whole, in pieces, or all at once; with keep-alives. */
export class FrameWriter {
  private readonly buffered: Buffer[] = [];
  private writing = false;
  private readonly keepAlive: NodeJS.Timeout | undefined;

  constructor(
    private readonly res: http.ServerResponse,
    private readonly b: TgiFakeBehaviour,
  ) {
    if (b.keepAliveMs > 0) {
      // Never between the pieces of a frame: that would corrupt it.
      this.keepAlive = setInterval(() => {
        if (!this.writing && this.open()) res.write(":\n\n");
      }, b.keepAliveMs);
    }
  }

  /** One `data:` frame of `data` as JSON, or as it is when it is a string (the Messages API's "[DONE]"). */
  async frame(data: unknown, delayMs: number): Promise<void> {
    const bytes = Buffer.from(`data:${typeof data === "string" ? data : JSON.stringify(data)}\n\n`, "utf8");
    if (this.b.burst) {
      this.buffered.push(bytes);
      return;
    }
    if (delayMs > 0) await sleep(delayMs);
    await this.write(bytes);
  }

  async finalError(error: string, errorType: string): Promise<void> {
    await this.frame({ error, error_type: errorType }, 0);
    this.end();
  }

  /** Silence until the client goes away. */
  async hang(): Promise<void> {
    this.flush();
    await new Promise<void>((resolve) => {
      if (!this.open()) resolve();
      else this.res.once("close", () => resolve());
    });
  }

  end(): void {
    this.flush();
    if (this.open()) this.res.end();
  }

  dispose(): void {
    clearInterval(this.keepAlive);
  }

  private flush(): void {
    if (this.buffered.length === 0) return;
    const all = Buffer.concat(this.buffered.splice(0));
    if (this.open()) this.res.write(all);
  }

  private async write(bytes: Buffer): Promise<void> {
    const step = this.b.chunkBytes > 0 ? this.b.chunkBytes : bytes.length;
    this.writing = true;
    try {
      for (let at = 0; at < bytes.length && this.open(); at += step) {
        this.res.write(bytes.subarray(at, at + step));
        // A pause long enough for each piece to leave as its own TCP segment and be read on its own.
        if (step < bytes.length) await sleep(2);
      }
    } finally {
      this.writing = false;
    }
  }

  private open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }
}
