import { Metadata, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from "@grpc/grpc-js";
import { Engine, ErrorCode, Priority, Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import type {
  CancelTaskRequest,
  CancelTaskResponse,
  CreateTaskRequest,
  CreateTaskResponse,
  ListTasksRequest,
  ListTasksResponse,
  StreamTaskRequest,
  StreamTaskResponse,
  TaskEvent,
  TaskServiceServer,
} from "../../contracts/gen/llama_orch/v1/task.js";
import { TaskState } from "../../contracts/gen/llama_orch/v1/task.js";
import { principalOf } from "../../contracts/runtime/auth/grpc-key-check.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { correlationIdOf, OrchError } from "../../contracts/runtime/metadata.js";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { SPAN_ATTRIBUTES, startSpan, traceContextFromMetadata } from "../../contracts/runtime/trace-context.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import type { Task } from "../tasks/task.js";
import { taskListingKey } from "../scheduler/task-summaries.js";
import { withoutLeadingTokens } from "../tasks/task-event-log.js";
import { readerStart, unseenPart } from "../tasks/reader-start.js";
import { pageOf } from "./paging.js";
import { mayTouchTask, touchableTask } from "./task-access.js";

/** TaskService: translates gRPC calls into scheduler calls and streams task logs out. */
export function taskService(scheduler: Scheduler, logger: Logger): TaskServiceServer {
  return {
    createTask: (call, callback) => createTask(scheduler, logger, call, callback),
    streamTask: (call) => streamTask(scheduler, call),
    cancelTask: (call, callback) => cancelTask(scheduler, logger, call, callback),
    listTasks: (call, callback) => listTasks(scheduler, logger, call, callback),
  };
}

function createTask(
  scheduler: Scheduler,
  logger: Logger,
  call: ServerUnaryCall<CreateTaskRequest, CreateTaskResponse>,
  callback: sendUnaryData<CreateTaskResponse>,
): void {
  const correlationId = correlationIdOf(call.metadata) ?? "";
  // Admission's own span; the task's span, which lasts until it ends, is its child.
  const { span, ctx } = startSpan(
    "llama_orch.admission",
    traceContextFromMetadata(call.metadata),
    { [SPAN_ATTRIBUTES.taskId]: call.request.taskId },
    SpanKind.SERVER,
  );
  try {
    validate(call.request);
    const caller = principalOf(call);
    const admission = scheduler.admit(call.request, correlationId, ctx, { owner: caller?.identity, budgets: caller?.sessionBudgets });
    const { task, queuePosition, predictedStartMs } = admission;
    span.setAttributes({ [SPAN_ATTRIBUTES.poolId]: task.poolId, "llama_orch.queue_position": queuePosition });
    // What admission decided, as of admission: by the time the journal is on disk the task may be running.
    const response = {
      taskId: task.id,
      queuePosition,
      predictedStartMs,
      backoffMs: 0,
      poolId: task.poolId,
      budgets: scheduler.liveBudgets(task),
    };
    // Acknowledged only once journaled: a task the client was told about survives a crash of core.
    admission.durable.then(
      () => callback(null, response),
      () => {
        // The journal logged why; the task must not run unacknowledged and undurable.
        scheduler.cancel(task.id, "journal");
        const error = OrchError.of(ErrorCode.ERROR_CODE_INTERNAL, "core could not write the task to its journal; submit it again", {
          retriable: true,
        });
        callback(error.toServiceError(), null);
      },
    );
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    callback(asServiceError(err, logger), null);
  } finally {
    span.end();
  }
}

function streamTask(scheduler: Scheduler, call: ServerWritableStream<StreamTaskRequest, StreamTaskResponse>): void {
  let task: Task;
  try {
    task = touchableTask(scheduler.getTask(call.request.taskId), call.request.taskId, principalOf(call));
  } catch (err) {
    call.emit("error", (err as OrchError).toServiceError());
    return;
  }
  relayLog(scheduler, task, call);
}

/** Streams a task's log from the caller's resume point until the log closes or the caller cancels. */
function relayLog(scheduler: Scheduler, task: Task, call: ServerWritableStream<StreamTaskRequest, StreamTaskResponse>): void {
  const log = task.log;
  const start = readerStart(log, call.request);
  let cursor = start.index;
  let skip = start.skipTokens;
  // A reader from before a restart says what it has; the rest is filtered by that.
  const unseen = start.has ? (events: TaskEvent[]) => events.flatMap((e) => unseenPart(e, start.has!) ?? []) : undefined;
  let waitingForDrain = false;
  let finished = false;
  // The first message tells the edge the session's budgets for the stream's headers.
  let budgets = scheduler.liveBudgets(task);
  // Sends everything appended since the last write in one message; pauses
  // while the transport is saturated so a slow reader costs a cursor only.
  const pump = (): void => {
    if (finished || waitingForDrain) return;
    while (cursor < log.events.length) {
      let batch = log.events.slice(cursor);
      if (skip > 0) batch[0] = withoutLeadingTokens(batch[0]!, skip);
      skip = 0;
      cursor = log.events.length;
      if (unseen) batch = unseen(batch);
      if (batch.length === 0) continue;
      const message = { events: batch, budgets };
      budgets = undefined;
      if (!call.write(message)) {
        waitingForDrain = true;
        call.once("drain", () => {
          waitingForDrain = false;
          pump();
        });
        return;
      }
    }
    if (log.isClosed) {
      finished = true;
      unsubscribe();
      call.end();
    }
  };
  const unsubscribe = log.subscribe(pump);
  scheduler.streamOpened(task);
  // Headers at once, so a reader knows core took the stream even while the task waits in a queue.
  call.sendMetadata(new Metadata());
  call.on("cancelled", () => {
    if (finished) return;
    finished = true;
    unsubscribe();
    scheduler.streamAbandoned(task);
  });
  pump();
}

function cancelTask(
  scheduler: Scheduler,
  logger: Logger,
  call: ServerUnaryCall<CancelTaskRequest, CancelTaskResponse>,
  callback: sendUnaryData<CancelTaskResponse>,
): void {
  try {
    const { taskId } = call.request;
    touchableTask(scheduler.getTask(taskId), taskId, principalOf(call));
    const canceled = scheduler.cancel(taskId, call.request.reason || "client");
    callback(null, { canceled });
  } catch (err) {
    callback(asServiceError(err, logger), null);
  }
}

function listTasks(
  scheduler: Scheduler,
  logger: Logger,
  call: ServerUnaryCall<ListTasksRequest, ListTasksResponse>,
  callback: sendUnaryData<ListTasksResponse>,
): void {
  try {
    const { state } = call.request;
    if (state === TaskState.UNRECOGNIZED || !(state in TaskState))
      throw OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, "state must be queued, running, finished or unspecified", { field: "state" });
    // A token is good only for the state it was handed out with.
    const caller = principalOf(call);
    const summaries = scheduler.taskSummaries(state, (task) => mayTouchTask(task, caller));
    const page = pageOf(summaries, taskListingKey, `tasks:${state}`, call.request);
    callback(null, { tasks: page.items, nextPageToken: page.nextPageToken });
  } catch (err) {
    callback(asServiceError(err, logger), null);
  }
}

/**
 * Core checks what a direct gRPC caller (grpcurl) could get wrong; the edge has
 * already validated public requests against the OpenAPI schema.
 */
function validate(r: CreateTaskRequest): void {
  const bad = (field: string, message: string) => {
    throw OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, message, { field });
  };
  if (!r.taskId) bad("/task_id", "task_id is required");
  if (!r.sessionId) bad("/session_id", "session_id is required");
  if (r.engine === Engine.ENGINE_UNSPECIFIED || r.engine === Engine.UNRECOGNIZED) bad("/engine", "engine is required");
  if (r.workload === Workload.WORKLOAD_UNSPECIFIED || r.workload === Workload.UNRECOGNIZED) bad("/workload", "workload is required");
  if (r.priority === Priority.PRIORITY_UNSPECIFIED || r.priority === Priority.UNRECOGNIZED) bad("/priority", "priority is required");
  if (!r.modelRef) bad("/model_ref", "model_ref is required");
  if (r.ctx < 1) bad("/ctx", "ctx must be at least 1");
  if (r.maxTokens < 1) bad("/max_tokens", "max_tokens must be at least 1");
  if (r.deadlineMs < 1) bad("/deadline_ms", "deadline_ms must be at least 1");
  if (r.workload === Workload.WORKLOAD_COMPLETION && !r.prompt && r.inputs.length === 0 && r.messages.length === 0)
    bad("/prompt", "a completion needs a prompt, inputs or messages");
  if (r.messages.length > 0 && r.workload !== Workload.WORKLOAD_COMPLETION)
    bad("/messages", "messages make a chat, which only completion tasks run");
  r.messages.forEach((m, i) => {
    if (!CHAT_ROLES.has(m.role)) bad(`/messages/${i}/role`, `role must be one of ${[...CHAT_ROLES].join(", ")}`);
  });
  if (r.workload === Workload.WORKLOAD_EMBEDDING && !r.prompt && r.inputs.length === 0)
    bad("/inputs", "an embedding task needs inputs (or a prompt) to embed");
  if (r.workload === Workload.WORKLOAD_RERANK && !r.prompt) bad("/prompt", "a rerank task needs the query in prompt");
  if (r.workload === Workload.WORKLOAD_RERANK && r.inputs.length === 0)
    bad("/inputs", "a rerank task needs the documents to rank in inputs");
}

const CHAT_ROLES = new Set(["system", "user", "assistant"]);

export function asServiceError(err: unknown, logger: Logger) {
  if (err instanceof OrchError) return err.toServiceError();
  logger.error({ err }, "unexpected error in a gRPC handler");
  return OrchError.of(ErrorCode.ERROR_CODE_INTERNAL, "internal error").toServiceError();
}
