import type { ServerResponse } from "node:http";
import { status as GrpcStatus, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import type { StreamTaskResponse } from "../../contracts/gen/llama_orch/v1/task.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { toHttpError, type CallContext, type CoreClient } from "../core-client.js";
import type { HttpError } from "../http-errors.js";
import { renderSse } from "../../contracts/task-events.js";
import { budgetHeaders } from "../budget-headers.js";

export interface StreamOutcome {
  /** Core refused before anything was sent (e.g. unknown task): answer with this instead. */
  refused?: HttpError;
}

/**
 * Relays a task's events from core to an HTTP response as SSE. Headers go out
 * only once core has answered, so an unknown task still gets a JSON 404. Each
 * gRPC message becomes exactly one socket write; when the socket is saturated
 * the gRPC stream is paused, and HTTP/2 flow control carries the pressure back
 * to core instead of buffering here.
 */
export function relayTaskStream(opts: {
  core: CoreClient;
  taskId: string;
  resumeAfterSeq: number | undefined;
  callContext: CallContext;
  res: ServerResponse;
  headers: Record<string, string>;
  /** Send a comment line when nothing was written for this long (0 = never). */
  heartbeatMs: number;
  logger: Logger;
  onEnd: (how: "completed" | "client_gone" | "core_failed") => void;
}): Promise<StreamOutcome> {
  const { res } = opts;
  const call = opts.core.streamTask(opts.taskId, opts.resumeAfterSeq, opts.callContext);
  return new Promise<StreamOutcome>((resolve) => {
    let started = false;
    let done = false;
    const onDrain = () => call.resume();
    // One timer per stream, never per event: it only looks at when we last wrote.
    let lastWriteAt = Date.now();
    const heartbeat =
      opts.heartbeatMs > 0
        ? setInterval(
            () => {
              if (started && !done && Date.now() - lastWriteAt >= opts.heartbeatMs && res.writableLength === 0) {
                res.write(": keep-alive\n\n");
                lastWriteAt = Date.now();
              }
            },
            Math.max(10, opts.heartbeatMs / 2),
          )
        : undefined;
    heartbeat?.unref();
    const finish = (how: "completed" | "client_gone" | "core_failed") => {
      if (done) return;
      done = true;
      if (heartbeat) clearInterval(heartbeat);
      opts.onEnd(how);
    };
    call.on("data", (m: StreamTaskResponse) => {
      if (!started) {
        started = true;
        res.writeHead(200, {
          "Content-Type": "text/event-stream; charset=utf-8",
          "Cache-Control": "no-cache",
          "X-Accel-Buffering": "no",
          ...budgetHeaders(m.budgets),
          ...opts.headers,
        });
        resolve({});
      }
      lastWriteAt = Date.now();
      if (!res.write(renderSse(m.events))) {
        call.pause();
        res.once("drain", onDrain);
      }
    });
    let ended = false;
    let okStatus = false;
    // grpc-js may emit "end" before "error" for a call that failed at once;
    // an empty stream only counts as one once its OK status is in.
    const endIfComplete = () => {
      if (!ended || done) return;
      if (started) {
        res.end();
        finish("completed");
      } else if (okStatus) {
        res.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", ...opts.headers });
        res.end();
        resolve({});
        finish("completed");
      }
    };
    call.on("status", (st: StatusObject) => {
      okStatus = st.code === GrpcStatus.OK;
      endIfComplete();
    });
    call.on("end", () => {
      ended = true;
      endIfComplete();
    });
    call.on("error", (err: ServiceError) => {
      if (done) return;
      if (!started) {
        finish("core_failed");
        resolve({ refused: toHttpError(err) });
        return;
      }
      opts.logger.warn(
        { correlation_id: opts.callContext.correlationId, job_id: opts.taskId, err: err.message },
        "task stream from core broke",
      );
      res.end();
      finish("core_failed");
    });
    res.on("close", () => {
      if (res.writableFinished) return;
      // The client went away before the stream ended: stop relaying.
      call.cancel();
      finish("client_gone");
    });
  });
}
