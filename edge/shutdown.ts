import type { Middleware } from "koa";
import { ErrorCode } from "../contracts/gen/llama_orch/v1/common.js";
import type { Logger } from "../contracts/runtime/logger.js";
import { drained } from "../contracts/runtime/shutdown-grace.js";
import { HttpError } from "./http-errors.js";

/** How long a client the draining edge refused should wait: about as long as a restart takes. */
const RETRY_AFTER_MS = 2_000;

/** A response the edge may have to end itself when its shutdown grace is over (an SSE relay). */
export interface CuttableStream {
  /** Ends the response with a retriable SHUTTING_DOWN for the client. */
  cut(): void;
}

/**
 * The edge's SIGTERM: the one owner of whether it still admits tasks, of the
 * streams and requests in flight, and of ending what outlives the grace.
 * While it drains, the edge keeps serving (streams, cancels, listings), but
 * admission and /readyz answer 503 SHUTTING_DOWN, so clients and load
 * balancers go elsewhere.
 */
export class EdgeShutdown {
  private draining = false;
  private readonly streams = new Set<CuttableStream>();
  private requests = 0;

  constructor(private readonly logger: Logger) {}

  get isDraining(): boolean {
    return this.draining;
  }

  /** Every admission (native and compatible APIs) asks first. */
  assertAdmitting(): void {
    if (this.draining) throw shuttingDown("the edge is shutting down and admits no new tasks; retry shortly");
  }

  /** /readyz while draining. */
  assertReady(): void {
    if (this.draining) throw shuttingDown("the edge is shutting down");
  }

  /** Counts the requests being handled, which the drain waits for (a stream's handler returns once it started). */
  counting(): Middleware {
    return async (_ctx, next) => {
      this.requests++;
      try {
        await next();
      } finally {
        this.requests--;
      }
    };
  }

  /** A stream the drain waits for; returns what forgets it. */
  readonly track = (stream: CuttableStream): (() => void) => {
    this.streams.add(stream);
    return () => this.streams.delete(stream);
  };

  /** Admits nothing more, waits up to `graceMs` for streams and requests to end, then cuts the streams left. */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    this.logger.info(
      { event: "shutting_down", streams: this.streams.size, requests: this.requests, grace_ms: graceMs },
      `edge shutting down: admitting nothing, ${this.streams.size} streams and ${this.requests} requests have ${graceMs} ms to finish`,
    );
    if (await drained(() => this.streams.size === 0 && this.requests === 0, graceMs)) return;
    const left = [...this.streams];
    for (const s of left) s.cut();
    this.logger.info(
      { event: "drained", streams_cut: left.length, requests_left: this.requests },
      `edge's shutdown grace is over: ${left.length} streams end with SHUTTING_DOWN`,
    );
  }
}

function shuttingDown(message: string): HttpError {
  return HttpError.of(ErrorCode.ERROR_CODE_SHUTTING_DOWN, message, { retriable: true, retryAfterMs: RETRY_AFTER_MS });
}
