import type { ServerResponse } from "node:http";
import { status as GrpcStatus, type ClientReadableStream, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import { Engine, ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { StreamTaskResponse, TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";
import { errorDetailOf } from "../../contracts/runtime/error-status.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { toHttpError, type CallContext, type CoreClient } from "../core-client.js";
import { HttpError } from "../http-errors.js";
import type { CuttableStream } from "../shutdown.js";
import { renderSse } from "../../contracts/task-events.js";
import { budgetHeaders } from "../budget-headers.js";
import { StreamPosition } from "./stream-position.js";

export interface StreamOutcome {
  /** Core refused before anything was sent (e.g. unknown task): answer with this instead. */
  refused?: HttpError;
}

type StreamEnd = "completed" | "client_gone" | "core_failed" | "core_lost" | "edge_shutdown";

interface RelayOptions {
  core: CoreClient;
  taskId: string;
  resumeAfterSeq: number | undefined;
  callContext: CallContext;
  res: ServerResponse;
  headers: Record<string, string>;
  /** Send a comment line when nothing was written for this long (0 = never). */
  heartbeatMs: number;
  /** How long a started stream waits for core to come back before it ends with CORE_UNAVAILABLE. */
  coreLossGraceMs: number;
  logger: Logger;
  onEnd: (how: StreamEnd) => void;
  /** How a batch of events is written: the native SSE frames unless a compatible API renders its own. */
  render?: (events: readonly TaskEvent[]) => string;
  /** Tells the edge's shutdown about the stream, which it may cut; returns what forgets it. */
  track?: (stream: CuttableStream) => () => void;
}

/** Between attempts to open the stream again while core is away. */
const RECONNECT_PAUSE_MS = 200;
/** How long one wait for core's channel to become ready lasts before the next attempt. */
const RECONNECT_WAIT_MS = 1_000;

/**
 * Relays a task's events from core to an HTTP response as SSE. Headers go out
 * only once core has answered, so an unknown task still gets a JSON 404, and a
 * finished task with nothing after Last-Event-ID a 204. Each gRPC message
 * becomes exactly one socket write; when the socket is saturated the gRPC
 * stream is paused, and HTTP/2 flow control carries the pressure back to core
 * instead of buffering here.
 */
export function relayTaskStream(opts: RelayOptions): Promise<StreamOutcome> {
  return new Promise<StreamOutcome>((resolve) => new TaskStreamRelay(opts, resolve).listen());
}

/**
 * One relay's state: whether headers went out, how far the client got, the
 * call to core now, and its timers. Once the stream has started, losing core
 * (its call fails, or ends without a terminal event) does not end it: the
 * relay keeps the client's connection (heartbeats go on) and opens the
 * stream again from where the client is, until core answers or the grace
 * runs out; then the client gets a typed, retriable CORE_UNAVAILABLE
 * `error` frame, never a bare close.
 */
class TaskStreamRelay implements CuttableStream {
  private started = false;
  private readonly untrack: () => void;
  private done = false;
  private readonly position: StreamPosition;
  private call: ClientReadableStream<StreamTaskResponse>;
  private lastWriteAt = Date.now();
  private readonly heartbeat: NodeJS.Timeout | undefined;
  /** While core is away: when it went, and the timer that gives up on it. */
  private lostAt: number | undefined;
  /** The call to core was given up and no new one is open yet: what the old one still says does not count. */
  private between = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly onDrain = () => this.call.resume();

  constructor(
    private readonly opts: RelayOptions,
    private readonly resolve: (outcome: StreamOutcome) => void,
  ) {
    this.position = new StreamPosition(opts.resumeAfterSeq);
    this.call = opts.core.streamTask(opts.taskId, opts.resumeAfterSeq, opts.callContext);
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
    this.follow(this.call);
    this.opts.res.on("close", () => this.clientClosed());
  }

  /** Every event of one call to core; a call the relay has replaced says nothing any more. */
  private follow(call: ClientReadableStream<StreamTaskResponse>): void {
    let ended = false;
    let ok = false;
    const current = () => call === this.call && !this.done && !this.between;
    const settle = () => {
      if (ended && ok && current()) this.coreEnded();
    };
    call.on("metadata", () => {
      if (current()) this.coreBack();
    });
    call.on("data", (m: StreamTaskResponse) => {
      if (!current()) return;
      this.coreBack();
      this.relay(m);
    });
    // grpc-js may emit "end" before "error" for a call that failed at once; an empty stream only counts as one once its OK status is in.
    call.on("status", (st: StatusObject) => {
      ok = st.code === GrpcStatus.OK;
      settle();
    });
    call.on("end", () => {
      ended = true;
      settle();
    });
    call.on("error", (err: ServiceError) => {
      if (current()) this.coreFailed(err);
    });
  }

  /** One timer per stream, never per event: it only looks at when we last wrote. */
  private startHeartbeat(): NodeJS.Timeout | undefined {
    const { heartbeatMs, res } = this.opts;
    const timer =
      heartbeatMs > 0
        ? setInterval(
            () => {
              if (this.started && !this.done && Date.now() - this.lastWriteAt >= heartbeatMs && res.writableLength === 0)
                this.comment("keep-alive");
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
    this.position.note(m.events);
    if (!res.write((this.opts.render ?? renderSse)(m.events))) {
      this.call.pause();
      res.once("drain", this.onDrain);
    }
  }

  /** Core ended the call cleanly: after the terminal event that is the end; before it, core went away. */
  private coreEnded(): void {
    const { res } = this.opts;
    if (this.started && this.position.ended) {
      res.end();
      this.finish("completed");
    } else if (this.started) {
      this.coreLost("core ended the stream before its last event");
    } else {
      // Core ended the stream without an event: the task is over and the client has all of it
      // (Last-Event-ID at or past the end). 204 is what makes an EventSource stop reconnecting.
      res.writeHead(204, this.opts.headers);
      res.end();
      this.resolve({});
      this.finish("completed");
    }
  }

  private coreFailed(err: ServiceError): void {
    if (!this.started) {
      this.finish("core_failed");
      this.resolve({ refused: toHttpError(err) });
      return;
    }
    if (errorDetailOf(err)?.code === ErrorCode.ERROR_CODE_NOT_FOUND) {
      this.giveUp(`core restarted and no longer knows task ${this.opts.taskId}; submit it again`);
      return;
    }
    this.coreLost(err.details || err.message);
  }

  /** Holds the client's stream while core is away, and tries to open it again from where the client is. */
  private coreLost(why: string): void {
    this.between = true;
    this.call.cancel();
    if (this.lostAt === undefined) {
      this.lostAt = Date.now();
      const grace = this.opts.coreLossGraceMs;
      this.graceTimer = setTimeout(() => this.giveUp(`core was unreachable for more than ${grace} ms`), grace);
      this.opts.logger.warn(
        { correlation_id: this.opts.callContext.correlationId, job_id: this.opts.taskId, event: "core_lost", err: why, grace_ms: grace },
        `task stream from core broke (${why}); holding the client's stream up to ${grace} ms for core to come back`,
      );
      this.comment("core unreachable; holding the stream");
    }
    this.retryTimer = setTimeout(() => this.reconnect(), RECONNECT_PAUSE_MS);
  }

  private reconnect(): void {
    this.retryTimer = undefined;
    if (this.done) return;
    this.opts.core.tasks.waitForReady(Date.now() + RECONNECT_WAIT_MS, (err) => {
      if (this.done) return;
      if (err) {
        this.retryTimer = setTimeout(() => this.reconnect(), 0);
        return;
      }
      const { lastSeq, tokens, results } = this.position;
      this.call = this.opts.core.streamTask(this.opts.taskId, lastSeq, this.opts.callContext, { tokens, results });
      this.between = false;
      this.follow(this.call);
    });
  }

  /** Core answered again: the hold is over. */
  private coreBack(): void {
    if (this.lostAt === undefined) return;
    this.opts.logger.info(
      {
        correlation_id: this.opts.callContext.correlationId,
        job_id: this.opts.taskId,
        event: "core_back",
        after_ms: Date.now() - this.lostAt,
      },
      `task stream resumed after core was away for ${Date.now() - this.lostAt} ms`,
    );
    this.lostAt = undefined;
    clearTimeout(this.graceTimer);
  }

  /** The stream cannot go on: a typed, retriable error frame (without an id, so a reconnect resumes after the last real one). */
  private giveUp(message: string): void {
    if (this.done) return;
    this.call.cancel();
    const error: TaskEvent = {
      seq: 0,
      kind: {
        $case: "error",
        error: {
          code: ErrorCode.ERROR_CODE_CORE_UNAVAILABLE,
          message,
          engine: Engine.ENGINE_UNSPECIFIED,
          retriable: true,
          traceArtifactId: "",
        },
      },
    };
    this.opts.logger.warn(
      { correlation_id: this.opts.callContext.correlationId, job_id: this.opts.taskId, event: "core_lost_stream_ended", reason: message },
      `task stream ended with CORE_UNAVAILABLE: ${message}`,
    );
    this.opts.res.end((this.opts.render ?? renderSse)([error]));
    this.finish("core_lost");
  }

  private comment(text: string): void {
    this.opts.res.write(`: ${text}\n\n`);
    this.lastWriteAt = Date.now();
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
    clearInterval(this.heartbeat);
    clearTimeout(this.graceTimer);
    clearTimeout(this.retryTimer);
    this.opts.onEnd(how);
  }
}
