import type Router from "@koa/router";
import type { Context } from "koa";
import { pathParamValidator, requestBodyValidator } from "../../contracts/openapi.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import type { CoreClient } from "../core-client.js";
import { callContext, noteTask } from "../call-context.js";
import type { CreateTaskRequest, CreateTaskResponse } from "../../contracts/gen/llama_orch/v1/task.js";
import { ensureValid } from "../validation.js";
import type { EdgeMetrics } from "../metrics.js";
import { readJsonBody } from "../middleware/json-body.js";
import { relayTaskStream } from "../sse/task-stream.js";
import { budgetHeaders } from "../budget-headers.js";
import type { RateLimit } from "../middleware/rate-limit.js";
import { toCreateTaskRequest } from "../task-request.js";
import type { EdgeShutdown } from "../shutdown.js";

interface TaskRouteDeps {
  core: CoreClient;
  logger: Logger;
  metrics: EdgeMetrics;
  bodyLimitBytes: number;
  jsonMaxDepth: number;
  sseHeartbeatMs: number;
  coreLossGraceMs: number;
  rateLimit: RateLimit;
  shutdown: EdgeShutdown;
}

/** Data plane routes: admission, the SSE stream, cancel. Handlers only translate. */
export function mountTaskRoutes(router: Router, deps: TaskRouteDeps): void {
  const { core } = deps;
  const validateTask = requestBodyValidator("createTask");
  const validStreamId = pathParamValidator("streamTask", "id");
  const validCancelId = pathParamValidator("cancelTask", "id");

  router.post("/v1/tasks", async (ctx) => {
    deps.shutdown.assertAdmitting();
    const body = await readJsonBody(ctx, deps);
    ensureValid(validateTask(body));
    await createTask(ctx, deps, toCreateTaskRequest(body));
  });

  router.get("/v1/tasks/:id/stream", async (ctx) => {
    const id = ctx.params.id!;
    ensureValid(validStreamId(id));
    await streamTask(ctx, deps, id);
  });

  router.post("/v1/tasks/:id/cancel", async (ctx) => {
    const id = ctx.params.id!;
    ensureValid(validCancelId(id));
    await core.call(callContext(ctx), (md, o, cb) => core.tasks.cancelTask({ taskId: id.toLowerCase(), reason: "client" }, md, o, cb));
    ctx.status = 204;
  });
}

/** POST /v1/tasks once the body is valid: admission by core, answered with 202 and the session's budgets. */
async function createTask(ctx: Context, { core, logger }: TaskRouteDeps, request: CreateTaskRequest): Promise<void> {
  noteTask(ctx, request.taskId);
  const admitted = await core.call<CreateTaskResponse>(callContext(ctx), (md, o, cb) => core.tasks.createTask(request, md, o, cb));
  logger.info(
    {
      correlation_id: ctx.state.correlationId,
      identity: ctx.state.identity,
      job_id: admitted.taskId,
      event: "task_submitted",
      pool_id: admitted.poolId,
    },
    `task ${admitted.taskId} submitted by ${ctx.state.identity}`,
  );
  ctx.status = 202;
  ctx.set(budgetHeaders(admitted.budgets));
  ctx.body = {
    task_id: admitted.taskId,
    queue_position: admitted.queuePosition,
    predicted_start_ms: admitted.predictedStartMs,
    backoff_ms: admitted.backoffMs,
    pool_id: admitted.poolId,
  };
}

/** GET /v1/tasks/{id}/stream once the id is valid: SSE from Last-Event-ID on, or a JSON error when core refuses at once. */
async function streamTask(ctx: Context, deps: TaskRouteDeps, id: string): Promise<void> {
  const { logger, metrics } = deps;
  const resumeAfterSeq = parseLastEventId(ctx.get("Last-Event-ID"));
  noteTask(ctx, id.toLowerCase());
  // From here on the response is written by hand, incrementally.
  ctx.respond = false;
  metrics.sseStreamsActive.inc();
  const outcome = await relayTaskStream({
    core: deps.core,
    taskId: id.toLowerCase(),
    resumeAfterSeq,
    callContext: callContext(ctx),
    res: ctx.res,
    headers: { "X-Correlation-Id": ctx.state.correlationId as string },
    heartbeatMs: deps.sseHeartbeatMs,
    coreLossGraceMs: deps.coreLossGraceMs,
    logger,
    track: deps.shutdown.track,
    onEnd: (how) => {
      metrics.sseStreamsActive.dec();
      metrics.sseStreamsEnded.inc({ how });
      logger.info(
        { correlation_id: ctx.state.correlationId, identity: ctx.state.identity, job_id: id, event: "stream_end", how },
        `stream of task ${id} ended (${how})`,
      );
    },
  });
  if (outcome.refused) {
    ctx.respond = true;
    throw outcome.refused;
  }
  logger.info(
    {
      correlation_id: ctx.state.correlationId,
      identity: ctx.state.identity,
      job_id: id,
      event: "stream_start",
      resume_after_seq: resumeAfterSeq,
    },
    `client streaming task ${id}${resumeAfterSeq ? ` from event ${resumeAfterSeq + 1}` : ""}`,
  );
}

/** Last-Event-ID is our own decimal sequence number; anything else restarts from the top. */
function parseLastEventId(raw: string): number | undefined {
  if (!/^\d{1,15}$/.test(raw)) return undefined;
  return Number(raw);
}
