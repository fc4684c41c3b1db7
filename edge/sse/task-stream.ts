import type { ServerResponse } from "node:http";
import { status as GrpcStatus, type ClientReadableStream, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import type { StreamTaskResponse, TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { toHttpError, type CallContext, type CoreClient } from "../core-client.js";
import { HttpError } from "../http-errors.js";
import type { CuttableStream } from "../shutdown.js";
import { Engine, ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { renderSse } from "../../contracts/task-events.js";
import { budgetHeaders } from "../budget-headers.js";

export interface StreamOutcome {
  /** Core refused before anything was sent (e.g. unknown task): answer with this instead. */
  refused?: HttpError;
}

type StreamEnd = "completed" | "client_gone" | "core_failed" | "edge_shutdown";

interface RelayOptions {
  core: CoreClient;
  taskId: string;
  resumeAfterSeq: number | undefined;
  callContext: CallContext;
  res: ServerResponse;
  headers: Record<string, string>;
  /** Send a comment line when nothing was written for this long (0 = never). */
  heartbeatMs: number;
  logger: Logger;
  onEnd: (how: StreamEnd) => void;
  /** How a batch of events is written: the native SSE frames unless a compatible API renders its own. */
  render?: (events: readonly TaskEvent[]) => string;
  /** Tells the edge's shutdown about the stream, which it may cut; returns what forgets it. */
  track?: (stream: CuttableStream) => () => void;
}

/**
 * Relays a task's events from core to an HTTP response as SSE. Headers go out
 * only once core has answered, so an unknown task still gets a JSON 404, and a
 * finished task with nothing after Last-Event-ID a 204. Each gRPC message
 * becomes exactly one socket write; when the socket is saturated the gRPC
 * stream is paused, and HTTP/2 flow control carries the pressure back to core
 * instead of buffering here.
 */
export function relayTaskStream(opts: RelayOptions): Promise<StreamOutcome> {
  const call = opts.core.streamTask(opts.taskId, opts.resumeAfterSeq, opts.callContext);
  return new Promise<StreamOutcome>((resolve) => new TaskStreamRelay(opts, call, resolve).listen());
}

/** One relay's state: whether headers went out, whether it ended, and its heartbeat timer. */
class TaskStreamRelay implements CuttableStream {
  private started = false;
  private readonly untrack: () => void;
  private done = false;
  private ended = false;
  private okStatus = false;
  private lastWriteAt = Date.now();
  private readonly heartbeat: NodeJS.Timeout | undefined;
  private readonly onDrain = () => this.call.resume();

  constructor(
    private readonly opts: RelayOptions,
    private readonly call: ClientReadableStream<StreamTaskResponse>,
    private readonly resolve: (outcome: StreamOutcome) => void,
  ) {
    this.heartbeat = this.startHeartbeat();
    this.untrack = opts.track?.(this) ?? (() => {});
  }

  /**
   * The edge's shutdown grace is over: the client gets a retriable
   * SHUTTING_DOWN frame and the relay ends (the task goes on in core). The
   * frame has no id (seq 0), so a client resuming with Last-Event-ID, through
   * another edge or this one restarted, resumes after the last real frame.
   */
  cut(): void {
    if (this.done) return;
    const message = "the edge is shutting down; open the stream again (with Last-Event-ID) to read on";
    this.finish("edge_shutdown");
    if (!this.started) {
      this.resolve({ refused: HttpError.of(ErrorCode.ERROR_CODE_SHUTTING_DOWN, message, { retriable: true, retryAfterMs: 2_000 }) });
    } else {
      const error = {
        traceArtifactId: "",
        code: ErrorCode.ERROR_CODE_SHUTTING_DOWN,
        message,
        engine: Engine.ENGINE_UNSPECIFIED,
        retriable: true,
      };
      this.opts.res.end((this.opts.render ?? renderSse)([{ seq: 0, kind: { $case: "error", error } }]));
    }
    this.call.cancel();
  }

  listen(): void {
    this.call.on("data", (m: StreamTaskResponse) => this.relay(m));
    this.call.on("status", (st: StatusObject) => {
      this.okStatus = st.code === GrpcStatus.OK;
      this.endIfComplete();
    });
    this.call.on("end", () => {
      this.ended = true;
      this.endIfComplete();
    });
    this.call.on("error", (err: ServiceError) => this.coreFailed(err));
    this.opts.res.on("close", () => this.clientClosed());
  }

  /** One timer per stream, never per event: it only looks at when we last wrote. */
  private startHeartbeat(): NodeJS.Timeout | undefined {
    const { heartbeatMs, res } = this.opts;
    const timer =
      heartbeatMs > 0
        ? setInterval(
            () => {
              if (this.started && !this.done && Date.now() - this.lastWriteAt >= heartbeatMs && res.writableLength === 0) {
                res.write(": keep-alive\n\n");
                this.lastWriteAt = Date.now();
              }
            },
            Math.max(10, heartbeatMs / 2),
          )
        : undefined;
    timer?.unref();
    return timer;
  }

  /** One gRPC message, one socket write; a saturated socket pauses the gRPC stream until it drains. */
  private relay(m: StreamTaskResponse): void {
    const { res } = this.opts;
    if (!this.started) {
      this.started = true;
      res.writeHead(200, {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        ...budgetHeaders(m.budgets),
        ...this.opts.headers,
      });
      this.resolve({});
    }
    this.lastWriteAt = Date.now();
    if (!res.write((this.opts.render ?? renderSse)(m.events))) {
      this.call.pause();
      res.once("drain", this.onDrain);
    }
  }

  /**
   * grpc-js may emit "end" before "error" for a call that failed at once;
   * an empty stream only counts as one once its OK status is in.
   */
  private endIfComplete(): void {
    if (!this.ended || this.done) return;
    const { res } = this.opts;
    if (this.started) {
      res.end();
      this.finish("completed");
    } else if (this.okStatus) {
      // Core ended the stream without an event: the task is over and the client has all of it
      // (Last-Event-ID at or past the end). 204 is what makes an EventSource stop reconnecting.
      res.writeHead(204, this.opts.headers);
      res.end();
      this.resolve({});
      this.finish("completed");
    }
  }

  private coreFailed(err: ServiceError): void {
    if (this.done) return;
    if (!this.started) {
      this.finish("core_failed");
      this.resolve({ refused: toHttpError(err) });
      return;
    }
    this.opts.logger.warn(
      { correlation_id: this.opts.callContext.correlationId, job_id: this.opts.taskId, err: err.message },
      "task stream from core broke",
    );
    this.opts.res.end();
    this.finish("core_failed");
  }

  private clientClosed(): void {
    if (this.opts.res.writableFinished) return;
    // The client went away before the stream ended: stop relaying.
    this.call.cancel();
    this.finish("client_gone");
  }

  private finish(how: StreamEnd): void {
    if (this.done) return;
    this.done = true;
    this.untrack();
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.opts.onEnd(how);
  }
}
