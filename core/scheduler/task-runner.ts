import { status as GrpcStatus, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { CreateTaskRequest } from "../../contracts/gen/llama_orch/v1/task.js";
import { SubmitRequest, type SubmitResponse } from "../../contracts/gen/llama_orch/v1/worker.js";
import { priorities } from "../../contracts/enums.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { correlationMetadata } from "../../contracts/runtime/metadata.js";
import { publicText } from "../../contracts/runtime/public-text.js";
import type { CoreMetrics } from "../metrics.js";
import type { Replica } from "../registry/replica.js";
import type { SlotLease } from "../registry/slot-lease.js";
import type { Task, TerminalEvent } from "../tasks/task.js";
import type { DispatchPick } from "./dispatcher.js";
import type { PoolTable } from "./pool-table.js";
import type { ProgressFrames } from "./progress-frames.js";
import { latencyLabels, replicaLabels, taskLogFields } from "./task-labels.js";
import type { FinishTask } from "./task-lifecycle.js";
import type { TaskTable } from "./task-table.js";
import type { TaskJournalSink } from "../journal/task-journal.js";
import { stopGeneration } from "./generation-stop.js";
import { ERROR_CODE_OF_WORKER_ERROR, isRetriableBeforeStart } from "./worker-errors.js";

/**
 * Runs a dispatched task on its replica: opens the Submit stream, relays its
 * events into the task's log, and puts work that never started back at the
 * head of its queue a bounded number of times. Every ending goes through
 * `finish`.
 */
export class TaskRunner {
  constructor(
    private readonly deps: {
      tasks: TaskTable;
      pools: PoolTable;
      frames: ProgressFrames;
      metrics: CoreMetrics;
      logger: Logger;
      finish: FinishTask;
      journal: () => TaskJournalSink | undefined;
      /** Dispatch of the pool again a little later, so a refused slot can come back. */
      redispatchSoon: (poolId: string) => void;
      maxDispatchAttempts: number;
    },
  ) {}

  start(task: Task, replica: Replica, lease: SlotLease, placed: DispatchPick): void {
    const { tasks, pools, frames, metrics, logger } = this.deps;
    const call = replica.client.submit(
      submitRequestOf(task.request),
      correlationMetadata(task.correlationId, task.traceDispatch(replica.id)),
    );
    tasks.start(task, { lease, replica, call, kvWarm: placed.kvWarm }, Date.now());
    this.deps.journal()?.dispatched(task.id, replica.id);
    frames.dispatched(task, replica, pools.get(task.poolId)?.queue.size ?? 0, placed.wakes);
    metrics.tasksStarted.inc({ ...replicaLabels(task, replica), priority: priorities.name(task.request.priority) });
    logger.info(
      {
        ...taskLogFields(task),
        event: "placed",
        attempt: task.attempts,
        kv_warmth: placed.kvWarm,
        placement_why: placed.why,
        waits_for_model_load: placed.wakes || undefined,
      },
      `task ${task.id} placed on replica ${replica.id} of pool ${replica.poolId}${placed.kvWarm ? " (session KV warm)" : ""}${placed.wakes ? " (it loads its unloaded model first)" : ""}`,
    );
    this.relay(task, replica, call);
  }

  /**
   * Takes back a generation its replica kept running while core was away
   * (core restarted, or lost the call): a Submit with `resume`, from the
   * tokens and results the task's log already has, into the same relay.
   */
  resume(task: Task, replica: Replica, lease: SlotLease): void {
    const { tasks, pools, frames, logger } = this.deps;
    const resume = { tokensReceived: task.tokensOut, resultsReceived: task.resultsOut };
    const request = SubmitRequest.fromPartial({ taskId: task.id, detachable: true, resume });
    const call = replica.client.submit(request, correlationMetadata(task.correlationId, task.traceContext));
    tasks.start(task, { lease, replica, call, kvWarm: false }, Date.now());
    this.deps.journal()?.dispatched(task.id, replica.id);
    frames.dispatched(task, replica, pools.get(task.poolId)?.queue.size ?? 0);
    logger.info(
      { ...taskLogFields(task), event: "resumed", tokens_received: resume.tokensReceived },
      `task ${task.id} taken back from replica ${replica.id}, which kept it running while core was away (from token ${resume.tokensReceived})`,
    );
    this.relay(task, replica, call);
  }

  /** Events of `call` count only while it is still the task's running attempt. */
  private relay(task: Task, replica: Replica, call: ClientReadableStream<SubmitResponse>): void {
    const current = () => task.call === call && task.state === "running";
    call.on("data", (m: SubmitResponse) => {
      if (current()) this.onWorkerEvent(task, replica, m);
    });
    call.on("error", (err: ServiceError) => {
      if (!current()) return;
      // gRPC's details name the replica's address and the socket error: they go to the log, not to the client.
      const detail = err.details || err.message;
      if (!task.hasOutput && err.code === GrpcStatus.UNAVAILABLE) {
        this.retryOrFail(task, `replica ${replica.id} was unreachable`, detail);
        return;
      }
      this.deps.metrics.workerResets.inc({ pool_id: replica.poolId, replica_id: replica.id });
      this.deps.logger.warn(
        { ...taskLogFields(task), event: "worker_reset", replica_id: replica.id, detail },
        `task ${task.id} lost replica ${replica.id} mid-stream: ${detail}`,
      );
      this.deps.finish(task, workerReset(task, replica));
      // Only the call broke, perhaps: a sidecar that is still there would hold the generation for nobody.
      replica.cancelGeneration(task.id);
    });
    call.on("end", () => {
      if (!current()) return;
      this.deps.finish(task, workerReset(task, replica, "its stream ended without an end event"));
      replica.cancelGeneration(task.id);
    });
  }

  private onWorkerEvent(task: Task, replica: Replica, m: SubmitResponse): void {
    const ev = m.event;
    switch (ev?.$case) {
      case "started":
        task.recordPromptTokens(ev.started.tokensIn);
        return;
      case "tokens": {
        const n = ev.tokens.texts.length;
        if (n === 0) return;
        const now = Date.now();
        if (task.recordTokens(n, now)) this.deps.metrics.firstTokenMs.observe(latencyLabels(task, replica), now - task.admittedAt);
        task.log.append({ $case: "tokens", tokens: ev.tokens });
        return;
      }
      case "embedding":
      case "rerank": {
        const now = Date.now();
        if (task.recordResult(now)) this.deps.metrics.firstTokenMs.observe(latencyLabels(task, replica), now - task.admittedAt);
        // The worker's result messages are the task log's own: relayed as they are.
        task.log.append(ev);
        return;
      }
      case "end":
        task.recordPromptTokens(ev.end.tokensIn || task.tokensIn);
        this.deps.finish(task, {
          $case: "end",
          end: {
            traceArtifactId: "",
            tokensOut: task.tokensOut,
            decodeTimeMs: ev.end.decodeTimeMs,
            tokensIn: task.tokensIn,
            stopReason: ev.end.stopReason,
          },
        });
        return;
      case "error": {
        // Sidecars send public text; one from another release may not, and this message reaches the client.
        const message = publicText(ev.error.message);
        if (!task.hasOutput && isRetriableBeforeStart(ev.error.kind)) {
          this.retryOrFail(task, message, message === ev.error.message ? undefined : ev.error.message);
          return;
        }
        this.deps.finish(task, {
          $case: "error",
          error: {
            traceArtifactId: "",
            code: ERROR_CODE_OF_WORKER_ERROR[ev.error.kind],
            message,
            engine: task.request.engine,
            retriable: ev.error.retriable,
          },
        });
        return;
      }
      default:
        return;
    }
  }

  /**
   * Work that produced nothing goes back to the head of its queue, a bounded number of times.
   * `why` may reach the client (in REPLICA_EXHAUSTED); `detail`, when given, only the log.
   */
  private retryOrFail(task: Task, why: string, detail?: string): void {
    const call = task.call;
    const replica = task.replica;
    this.deps.tasks.abandonAttempt(task);
    stopGeneration(task.id, call, replica);
    if (task.attempts >= this.deps.maxDispatchAttempts) {
      const message = `no replica could start the task after ${task.attempts} attempts: ${why}`;
      // The attempts ran, so the session is charged for them as for any run.
      this.deps.finish(
        task,
        {
          $case: "error",
          error: {
            traceArtifactId: "",
            code: ErrorCode.ERROR_CODE_REPLICA_EXHAUSTED,
            message,
            engine: task.request.engine,
            retriable: true,
          },
        },
        { ran: true },
      );
      return;
    }
    const pool = this.deps.pools.get(task.poolId)!;
    pool.queue.requeueFront(task.id, task.request.priority, task);
    this.deps.journal()?.requeued(task.id);
    this.deps.logger.warn(
      { ...taskLogFields(task), event: "requeued", reason: why, detail },
      `task ${task.id} requeued: ${why}${detail ? ` (${detail})` : ""}`,
    );
    this.deps.redispatchSoon(pool.id);
  }
}

/** WORKER_RESET for the client; `why` is public text (the transport's own words go to the log). */
function workerReset(task: Task, replica: Replica, why?: string): TerminalEvent {
  return {
    $case: "error",
    error: {
      traceArtifactId: "",
      code: ErrorCode.ERROR_CODE_WORKER_RESET,
      message: `replica ${replica.id} went away mid-stream${why ? `: ${why}` : ""}; the task may be submitted again`,
      engine: task.request.engine,
      retriable: true,
    },
  };
}

function submitRequestOf(req: CreateTaskRequest): SubmitRequest {
  return SubmitRequest.fromPartial({
    taskId: req.taskId,
    sessionId: req.sessionId,
    workload: req.workload,
    modelRef: req.modelRef,
    prompt: req.prompt,
    inputs: req.inputs,
    maxTokens: req.maxTokens,
    seed: req.seed,
    determinism: req.determinism,
    samplerProfileVersion: req.samplerProfileVersion,
    ctx: req.ctx,
    kvHint: req.kvHint,
    sampling: req.sampling,
    messages: req.messages,
    // Should core go away mid-generation, the sidecar keeps it running for the core that comes back.
    detachable: true,
  });
}
