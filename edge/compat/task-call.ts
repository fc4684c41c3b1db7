import { status as GrpcStatus, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import type { Context } from "koa";
import { ErrorCode, StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import type {
  CreateTaskRequest,
  CreateTaskResponse,
  StreamTaskResponse,
  TaskEnd,
  TaskEvent,
} from "../../contracts/gen/llama_orch/v1/task.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { budgetHeaders } from "../budget-headers.js";
import { callContext, noteTask } from "../call-context.js";
import { toHttpError, type CoreClient } from "../core-client.js";
import { HttpError } from "../http-errors.js";
import type { EdgeMetrics } from "../metrics.js";
import { relayTaskStream } from "../sse/task-stream.js";
import { TaskCanceledError } from "./compat-errors.js";
import type { ModelDirectory } from "./model-directory.js";
import type { EdgeShutdown } from "../shutdown.js";

// The compatible APIs' one way to run a task: CreateTask, then StreamTask,
// exactly the calls POST /v1/tasks and GET /v1/tasks/{id}/stream make, so
// admission, queues, placement, budgets, backpressure, metrics and
// transcripts are the native ones. A client that goes away cancels the
// StreamTask call, which core treats as it treats a native stream closed
// early: the task is cancelled once the disconnect grace has passed.

export interface CompatDeps {
  core: CoreClient;
  logger: Logger;
  metrics: EdgeMetrics;
  bodyLimitBytes: number;
  jsonMaxDepth: number;
  sseHeartbeatMs: number;
  coreLossGraceMs: number;
  models: ModelDirectory;
  defaultDeadlineMs: number;
  defaultMaxTokens: number;
  shutdown: EdgeShutdown;
}

/** Admission by core; the task id goes out in X-Task-Id so /v1/tasks/{id}/stream, cancel and transcripts work on it. */
export async function admit(ctx: Context, deps: CompatDeps, request: CreateTaskRequest, api: string): Promise<CreateTaskResponse> {
  const { core, logger } = deps;
  deps.shutdown.assertAdmitting();
  noteTask(ctx, request.taskId);
  const admitted = await core.call<CreateTaskResponse>(callContext(ctx), (md, o, cb) => core.tasks.createTask(request, md, o, cb));
  logger.info(
    {
      correlation_id: ctx.state.correlationId,
      identity: ctx.state.identity,
      job_id: admitted.taskId,
      event: "task_submitted",
      pool_id: admitted.poolId,
      api,
    },
    `task ${admitted.taskId} submitted by ${ctx.state.identity} through ${api}`,
  );
  ctx.set("X-Task-Id", admitted.taskId);
  ctx.set(budgetHeaders(admitted.budgets));
  return admitted;
}

/** Everything a non-streaming response is built from. */
export interface TaskOutcome {
  text: string;
  end: TaskEnd;
  embeddings: Map<number, number[]>;
  scores: { index: number; relevanceScore: number }[];
}

/**
 * Reads a task's events to its end for a non-streaming response. Resolves
 * undefined when the client went away first (the call to core is cancelled,
 * as a closed native stream's is); an `error` event or a cancel by someone
 * else rejects with what the client should be told.
 */
export function collectTask(ctx: Context, deps: CompatDeps, taskId: string): Promise<TaskOutcome | undefined> {
  const call = deps.core.streamTask(taskId, undefined, callContext(ctx));
  const outcome: Omit<TaskOutcome, "end"> & { end?: TaskEnd } = { text: "", embeddings: new Map(), scores: [] };
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      ctx.res.off("close", onClose);
      fn();
    };
    const onClose = () =>
      settle(() => {
        call.cancel();
        resolve(undefined);
      });
    ctx.res.on("close", onClose);
    call.on("data", (m: StreamTaskResponse) => {
      for (const ev of m.events) {
        const failure = absorb(outcome, ev, taskId);
        if (failure) settle(() => reject(failure));
      }
    });
    call.on("error", (err: ServiceError) => settle(() => reject(toHttpError(err))));
    call.on("status", (st: StatusObject) => {
      if (st.code !== GrpcStatus.OK) return; // the error event says what went wrong
      const { end } = outcome;
      if (end) settle(() => resolve({ ...outcome, end }));
      else settle(() => reject(HttpError.of(ErrorCode.ERROR_CODE_INTERNAL, `the events of task ${taskId} ended without an end event`)));
    });
  });
}

/** Adds one event to the outcome; a terminal event that is a failure comes back as the error to answer with. */
function absorb(outcome: Omit<TaskOutcome, "end"> & { end?: TaskEnd }, ev: TaskEvent, taskId: string): Error | undefined {
  const k = ev.kind;
  switch (k?.$case) {
    case "tokens":
      outcome.text += k.tokens.texts.join("");
      return undefined;
    case "embedding":
      outcome.embeddings.set(k.embedding.index, k.embedding.vector);
      return undefined;
    case "rerank":
      outcome.scores.push({ index: k.rerank.index, relevanceScore: k.rerank.relevanceScore });
      return undefined;
    case "end":
      outcome.end = k.end;
      return k.end.stopReason === StopReason.STOP_REASON_CANCELED ? new TaskCanceledError(taskId) : undefined;
    case "error":
      return HttpError.of(k.error.code, k.error.message, { engine: k.error.engine, retriable: k.error.retriable });
    default:
      return undefined;
  }
}

/**
 * Streams a task to the client in a compatible API's own SSE dialect, with
 * the native relay's backpressure, heartbeat and disconnect handling.
 */
export async function relayCompatStream(
  ctx: Context,
  deps: CompatDeps,
  taskId: string,
  render: (events: readonly TaskEvent[]) => string,
  api: string,
): Promise<void> {
  const { logger, metrics } = deps;
  ctx.respond = false;
  metrics.sseStreamsActive.inc();
  const outcome = await relayTaskStream({
    core: deps.core,
    taskId,
    resumeAfterSeq: undefined,
    callContext: callContext(ctx),
    res: ctx.res,
    headers: { "X-Correlation-Id": ctx.state.correlationId as string, "X-Task-Id": taskId },
    heartbeatMs: deps.sseHeartbeatMs,
    coreLossGraceMs: deps.coreLossGraceMs,
    logger,
    render,
    track: deps.shutdown.track,
    onEnd: (how) => {
      metrics.sseStreamsActive.dec();
      metrics.sseStreamsEnded.inc({ how });
      logger.info(
        { correlation_id: ctx.state.correlationId, identity: ctx.state.identity, job_id: taskId, event: "stream_end", how, api },
        `${api} stream of task ${taskId} ended (${how})`,
      );
    },
  });
  if (outcome.refused) {
    ctx.respond = true;
    throw outcome.refused;
  }
}
