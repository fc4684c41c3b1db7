import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { ROOT_CONTEXT, SpanStatusCode, type Context } from "@opentelemetry/api";
import { ErrorCode, Priority, StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import type { CreateTaskRequest, TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";
import { SubmitRequest, type SubmitResponse } from "../../contracts/gen/llama_orch/v1/worker.js";
import { engines, priorities } from "../../contracts/enums.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { correlationMetadata, OrchError } from "../../contracts/runtime/metadata.js";
import { startSpan, traceIdOf } from "../../contracts/runtime/trace-context.js";
import type { CoreMetrics } from "../metrics.js";
import type { Replica } from "../registry/replica.js";
import type { ReplicaRegistry } from "../registry/replica-registry.js";
import { Task } from "../tasks/task.js";
import { PoolState } from "./pool-state.js";
import { ERROR_CODE_OF_WORKER_ERROR, isRetriableBeforeStart } from "./worker-errors.js";

export interface SchedulerOptions {
  /** Bound of each pool's queue (both priority classes together). */
  queueCapacity: number;
  /** How long a finished task's events stay readable. */
  taskRetentionMs: number;
  /** Upper bound of tasks kept in memory; the oldest finished ones go first. */
  maxRetainedTasks: number;
  /** Attempts for work that fails before producing anything (replica busy or gone). */
  maxDispatchAttempts: number;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = {
  queueCapacity: 256,
  taskRetentionMs: 10 * 60_000,
  maxRetainedTasks: 10_000,
  maxDispatchAttempts: 5,
};

/** Delay before re-dispatching work a replica refused, so its slot can come back. */
const REDISPATCH_DELAY_MS = 20;

type Terminal = Extract<TaskEvent["kind"], { $case: "end" } | { $case: "error" }>;

export interface Admission {
  task: Task;
  queuePosition: number;
  predictedStartMs: number;
}

/**
 * Owns every task and pool queue: admission, dispatch to replicas, relaying
 * replica events into each task's log, cancel. All mutation of tasks and
 * queues happens here, synchronously, so ordering questions have one answer.
 */
export class Scheduler {
  private readonly tasks = new Map<string, Task>();
  private readonly pools = new Map<string, PoolState>();
  private readonly retention = new Set<NodeJS.Timeout>();

  constructor(
    private readonly registry: ReplicaRegistry,
    private readonly metrics: CoreMetrics,
    private readonly logger: Logger,
    private readonly options: SchedulerOptions = DEFAULT_SCHEDULER_OPTIONS,
  ) {
    registry.on("change", (replica: Replica) => {
      this.poolFor(replica);
      this.updateReadyGauge(replica.poolId);
      this.dispatch(replica.poolId);
    });
  }

  getTask(id: string): Task | undefined {
    return this.tasks.get(id);
  }

  /** Runs admission and enqueues; throws OrchError with a typed code when refused. */
  admit(request: CreateTaskRequest, correlationId: string, traceParent: Context = ROOT_CONTEXT): Admission {
    const engineName = engines.name(request.engine);
    if (this.tasks.has(request.taskId)) {
      throw this.reject(engineName, "duplicate_task_id", OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `task_id ${request.taskId} already exists`, { field: "/task_id" }));
    }
    const pool = this.choosePool(request, engineName);
    const task = new Task(request, pool.id, correlationId);
    if (!pool.queue.enqueue(task.id, request.priority, task)) {
      this.metrics.backpressure.inc({ engine: engineName, policy: "reject" });
      const retryAfterMs = Math.max(1000, pool.predictStartMs(pool.queue.size, 0, this.slotsTotal(pool.id)));
      throw this.reject(
        engineName,
        "queue_full",
        OrchError.of(ErrorCode.ERROR_CODE_ADMISSION_REJECT, `queue of pool ${pool.id} is full (${pool.queue.capacity} tasks); retry later`, {
          engine: request.engine,
          retriable: true,
          retryAfterMs,
          policyLabel: "reject",
        }),
      );
    }
    const { span, ctx } = startSpan("llama_orch.task", traceParent, { "llama_orch.task_id": task.id, "llama_orch.pool_id": pool.id });
    task.span = span;
    task.traceContext = ctx;
    this.tasks.set(task.id, task);
    this.evictIfOverCapacity();
    const position = pool.queue.positionOf(task.id) ?? 0;
    const predictedStartMs = pool.predictStartMs(position, this.freeSlots(pool.id), this.slotsTotal(pool.id));
    task.log.append({ $case: "started", started: { queuePosition: position, predictedStartMs } });
    this.updateQueueGauge(pool);
    const labels = this.poolLabels(pool);
    this.metrics.tasksEnqueued.inc({ ...labels, replica_id: "", priority: priorities.name(request.priority) });
    this.logger.info(
      { ...this.taskFields(task), queue_position: position, predicted_start_ms: predictedStartMs, event: "admitted" },
      `task ${task.id} admitted to pool ${pool.id} at queue position ${position}, predicted start in ${predictedStartMs} ms`,
    );
    this.dispatch(pool.id);
    return { task, queuePosition: position, predictedStartMs };
  }

  /**
   * Cancels a queued or running task: its log ends at once with
   * `end{stop_reason: canceled}`, so no token can follow, and the replica's
   * generation is cancelled. Returns false for an already finished task.
   */
  cancel(taskId: string, reason: string): boolean {
    const task = this.tasks.get(taskId);
    if (!task) throw OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `unknown task ${taskId}`);
    if (task.state === "finished") return false;
    const replica = task.replica;
    const call = task.call;
    if (task.state === "queued") {
      const pool = this.pools.get(task.poolId);
      pool?.queue.remove(task.id);
      if (pool) this.updateQueueGauge(pool);
    }
    const decodeTimeMs = task.dispatchedAt ? Date.now() - task.dispatchedAt : 0;
    this.finish(task, { $case: "end", end: { tokensOut: task.tokensOut, decodeTimeMs, tokensIn: task.tokensIn, stopReason: StopReason.STOP_REASON_CANCELED } });
    call?.cancel();
    this.metrics.tasksCanceled.inc({ ...this.replicaLabels(task, replica), reason: normalizeReason(reason) });
    this.logger.info({ ...this.taskFields(task), event: "canceled", reason }, `task ${task.id} cancelled (${reason}) after ${task.tokensOut} tokens`);
    return true;
  }

  /** Stops everything; used at shutdown. */
  close(): void {
    for (const t of this.retention) clearTimeout(t);
    for (const task of this.tasks.values()) {
      if (task.state !== "finished") {
        task.call?.cancel();
        this.finish(task, { $case: "error", error: { code: ErrorCode.ERROR_CODE_INTERNAL, message: "core is shutting down", engine: task.request.engine, retriable: true } });
      }
    }
  }

  queueDepth(poolId: string): number {
    return this.pools.get(poolId)?.queue.size ?? 0;
  }

  private choosePool(request: CreateTaskRequest, engineName: string): PoolState {
    const candidates = new Map<string, Replica[]>();
    for (const r of this.registry.all()) {
      if (r.registration.engine !== request.engine || !r.servesModel(request.modelRef)) continue;
      const list = candidates.get(r.poolId) ?? [];
      list.push(r);
      candidates.set(r.poolId, list);
    }
    this.metrics.placementCandidates.set(candidates.size);
    if (candidates.size === 0) {
      this.metrics.placementDecisions.inc({ outcome: "no_candidate", pinned: "false", fallback: "false" });
      throw this.reject(
        engineName,
        "pool_unavailable",
        OrchError.of(ErrorCode.ERROR_CODE_POOL_UNAVAILABLE, `no pool serves engine ${engineName} with model ${request.modelRef}`, { engine: request.engine, retriable: false }),
      );
    }
    const ready = [...candidates].filter(([, rs]) => rs.some((r) => r.isReady));
    if (ready.length === 0) {
      this.metrics.placementDecisions.inc({ outcome: "unready", pinned: "false", fallback: "false" });
      throw this.reject(
        engineName,
        "pool_unready",
        OrchError.of(ErrorCode.ERROR_CODE_POOL_UNREADY, `pools for ${engineName}/${request.modelRef} are registered but none is ready yet`, {
          engine: request.engine,
          retriable: true,
          retryAfterMs: 1000,
        }),
      );
    }
    const ctxMax = Math.max(...ready.flatMap(([, rs]) => rs.filter((r) => r.isReady).map((r) => r.info?.ctxMax ?? 0)));
    if (ctxMax > 0 && request.ctx > ctxMax) {
      throw this.reject(
        engineName,
        "ctx_too_large",
        OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `ctx ${request.ctx} exceeds the largest context served (${ctxMax})`, { field: "/ctx", engine: request.engine }),
      );
    }
    // Least loaded pool first (queued work minus free slots), then pool id, so equal inputs give equal choices.
    const [poolId] = ready
      .map(([id]) => [id, (this.pools.get(id)?.queue.size ?? 0) - this.freeSlots(id)] as const)
      .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))[0]!;
    this.metrics.placementDecisions.inc({ outcome: "admitted", pinned: "false", fallback: "false" });
    return this.pools.get(poolId) ?? this.poolFor(candidates.get(poolId)![0]!);
  }

  /** Starts queued work on ready replicas with free slots until one runs out. */
  private dispatch(poolId: string): void {
    const pool = this.pools.get(poolId);
    if (!pool) return;
    while (pool.queue.size > 0) {
      const replica = this.pickReplica(poolId);
      if (!replica) break;
      const task = pool.queue.dequeue()!;
      this.run(task, replica);
    }
    this.updateQueueGauge(pool);
  }

  private pickReplica(poolId: string): Replica | undefined {
    let best: Replica | undefined;
    for (const r of this.registry.inPool(poolId)) {
      if (!r.isReady || r.freeSlots === 0) continue;
      if (!best || r.freeSlots > best.freeSlots || (r.freeSlots === best.freeSlots && r.id < best.id)) best = r;
    }
    return best;
  }

  private run(task: Task, replica: Replica): void {
    task.state = "running";
    task.replica = replica;
    task.attempts++;
    task.dispatchedAt ||= Date.now();
    replica.active++;
    const req = task.request;
    task.log.append({
      $case: "metrics",
      metrics: {
        queueDepth: this.queueDepth(task.poolId),
        kvWarmth: false,
        poolId: replica.poolId,
        replicaId: replica.id,
        engineVersion: replica.engineVersion,
      },
    });
    this.metrics.tasksStarted.inc({ ...this.replicaLabels(task, replica), priority: priorities.name(req.priority) });
    this.logger.info(
      { ...this.taskFields(task), event: "placed", attempt: task.attempts },
      `task ${task.id} placed on replica ${replica.id} of pool ${replica.poolId}`,
    );
    const call = replica.client.submit(
      SubmitRequest.fromPartial({
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
      }),
      correlationMetadata(task.correlationId, task.traceContext),
    );
    task.call = call;
    const current = () => task.call === call && task.state === "running";
    call.on("data", (m: SubmitResponse) => {
      if (current()) this.onWorkerEvent(task, replica, m);
    });
    call.on("error", (err: ServiceError) => {
      if (!current()) return;
      if (task.tokensOut === 0 && err.code === GrpcStatus.UNAVAILABLE) {
        this.retryOrFail(task, replica, `replica ${replica.id} unreachable: ${err.details}`);
        return;
      }
      this.metrics.workerResets.inc({ pool_id: replica.poolId, replica_id: replica.id });
      this.finish(task, this.workerReset(task, replica, err.details || err.message));
    });
    call.on("end", () => {
      if (current()) this.finish(task, this.workerReset(task, replica, "stream ended without an end event"));
    });
  }

  private onWorkerEvent(task: Task, replica: Replica, m: SubmitResponse): void {
    const ev = m.event;
    switch (ev?.$case) {
      case "started":
        task.tokensIn = ev.started.tokensIn;
        return;
      case "tokens": {
        const n = ev.tokens.texts.length;
        if (n === 0) return;
        if (task.firstTokenAt === 0) {
          task.firstTokenAt = Date.now();
          this.metrics.firstTokenMs.observe(this.latencyLabels(task, replica), task.firstTokenAt - task.admittedAt);
        }
        task.tokensOut += n;
        task.log.append({ $case: "tokens", tokens: ev.tokens });
        return;
      }
      case "metrics":
        return;
      case "end":
        task.tokensIn = ev.end.tokensIn || task.tokensIn;
        this.finish(task, {
          $case: "end",
          end: { tokensOut: task.tokensOut, decodeTimeMs: ev.end.decodeTimeMs, tokensIn: task.tokensIn, stopReason: ev.end.stopReason },
        });
        return;
      case "error":
        if (task.tokensOut === 0 && isRetriableBeforeStart(ev.error.kind)) {
          this.retryOrFail(task, replica, ev.error.message);
          return;
        }
        this.finish(task, {
          $case: "error",
          error: { code: ERROR_CODE_OF_WORKER_ERROR[ev.error.kind], message: ev.error.message, engine: task.request.engine, retriable: ev.error.retriable },
        });
        return;
      default:
        return;
    }
  }

  /** Work that produced nothing goes back to the head of its queue, a bounded number of times. */
  private retryOrFail(task: Task, replica: Replica, why: string): void {
    const call = task.call;
    task.call = undefined;
    task.replica = undefined;
    replica.active--;
    call?.cancel();
    if (task.attempts >= this.options.maxDispatchAttempts) {
      this.finish(task, {
        $case: "error",
        error: { code: ErrorCode.ERROR_CODE_REPLICA_EXHAUSTED, message: `no replica could start the task after ${task.attempts} attempts: ${why}`, engine: task.request.engine, retriable: true },
      });
      return;
    }
    const pool = this.pools.get(task.poolId)!;
    task.state = "queued";
    pool.queue.requeueFront(task.id, task.request.priority, task);
    this.logger.warn({ ...this.taskFields(task), event: "requeued", reason: why }, `task ${task.id} requeued: ${why}`);
    const t = setTimeout(() => {
      this.retention.delete(t);
      this.dispatch(pool.id);
    }, REDISPATCH_DELAY_MS);
    this.retention.add(t);
  }

  private workerReset(task: Task, replica: Replica, why: string): Terminal {
    return {
      $case: "error",
      error: { code: ErrorCode.ERROR_CODE_WORKER_RESET, message: `replica ${replica.id} went away mid-stream: ${why}`, engine: task.request.engine, retriable: true },
    };
  }

  /** The single exit of every task: terminal event, slot release, metrics, retention. */
  private finish(task: Task, terminal: Terminal): void {
    if (task.state === "finished") return;
    const replica = task.replica;
    const wasRunning = task.state === "running";
    task.state = "finished";
    task.finishedAt = Date.now();
    task.call = undefined;
    task.log.append(terminal);
    if (terminal.$case === "error") task.span?.setStatus({ code: SpanStatusCode.ERROR, message: terminal.error.message });
    task.span?.setAttribute("llama_orch.tokens_out", task.tokensOut);
    task.span?.end();
    const pool = this.pools.get(task.poolId);
    if (replica && wasRunning) {
      replica.active--;
      const labels = this.replicaLabels(task, replica);
      this.metrics.tokensOut.inc(labels, task.tokensOut);
      this.metrics.tokensIn.inc(labels, task.tokensIn);
      this.metrics.decodeMs.observe(this.latencyLabels(task, replica), task.finishedAt - task.dispatchedAt);
      if (terminal.$case === "end" && terminal.end.stopReason !== StopReason.STOP_REASON_CANCELED) pool?.recordServiceTime(task.finishedAt - task.dispatchedAt);
    }
    const fields = { ...this.taskFields(task), tokens_in: task.tokensIn, tokens_out: task.tokensOut, decode_time_ms: task.dispatchedAt ? task.finishedAt - task.dispatchedAt : 0 };
    if (terminal.$case === "error") {
      this.logger.warn({ ...fields, event: "failed", code: terminal.error.code, error: terminal.error.message }, `task ${task.id} failed: ${terminal.error.message}`);
    } else {
      this.logger.info({ ...fields, event: "finished" }, `task ${task.id} finished with ${task.tokensOut} tokens`);
    }
    const t = setTimeout(() => {
      this.retention.delete(t);
      this.tasks.delete(task.id);
    }, this.options.taskRetentionMs);
    t.unref();
    this.retention.add(t);
    if (replica && wasRunning) this.dispatch(task.poolId);
  }

  private evictIfOverCapacity(): void {
    if (this.tasks.size <= this.options.maxRetainedTasks) return;
    for (const [id, t] of this.tasks) {
      if (this.tasks.size <= this.options.maxRetainedTasks) break;
      if (t.state === "finished") this.tasks.delete(id);
    }
  }

  private reject(engineName: string, reason: string, err: OrchError): OrchError {
    this.metrics.tasksRejected.inc({ engine: engineName, reason });
    this.logger.info({ event: "rejected", engine: engineName, reason, code: err.detail.code }, `task refused at admission: ${err.message}`);
    return err;
  }

  private poolFor(replica: Replica): PoolState {
    let pool = this.pools.get(replica.poolId);
    if (!pool) {
      pool = new PoolState(replica.poolId, replica.registration.engine, this.options.queueCapacity);
      this.pools.set(pool.id, pool);
    }
    return pool;
  }

  private freeSlots(poolId: string): number {
    return this.registry.inPool(poolId).reduce((n, r) => n + (r.isReady ? r.freeSlots : 0), 0);
  }

  private slotsTotal(poolId: string): number {
    return this.registry.inPool(poolId).reduce((n, r) => n + (r.isReady ? r.slotsTotal : 0), 0);
  }

  private poolLabels(pool: PoolState) {
    const version = this.registry.inPool(pool.id).find((r) => r.engineVersion)?.engineVersion ?? "";
    return { engine: engines.name(pool.engine), engine_version: version, pool_id: pool.id };
  }

  private replicaLabels(task: Task, replica: Replica | undefined) {
    return {
      engine: engines.name(task.request.engine),
      engine_version: replica?.engineVersion ?? "",
      pool_id: task.poolId,
      replica_id: replica?.id ?? "",
    };
  }

  private latencyLabels(task: Task, replica: Replica) {
    return { engine: engines.name(task.request.engine), engine_version: replica.engineVersion, pool_id: task.poolId, priority: priorities.name(task.request.priority) };
  }

  private updateQueueGauge(pool: PoolState): void {
    const labels = this.poolLabels(pool);
    for (const p of [Priority.PRIORITY_INTERACTIVE, Priority.PRIORITY_BATCH]) {
      this.metrics.queueDepth.set({ ...labels, priority: priorities.name(p) }, pool.queue.sizeOf(p));
    }
  }

  private updateReadyGauge(poolId: string): void {
    this.metrics.replicasReady.set({ pool_id: poolId }, this.registry.inPool(poolId).filter((r) => r.isReady).length);
  }

  /** The log fields every line about a task carries. */
  private taskFields(task: Task) {
    return {
      job_id: task.id,
      session_id: task.request.sessionId,
      engine: engines.name(task.request.engine),
      engine_version: task.replica?.engineVersion ?? "",
      pool_id: task.poolId,
      replica_id: task.replica?.id ?? "",
      correlation_id: task.correlationId,
      trace_id: traceIdOf(task.traceContext),
    };
  }
}

/** Keeps the `reason` label within its small fixed budget. */
function normalizeReason(reason: string): string {
  return ["client", "disconnect", "operator", "watchdog", "shutdown"].includes(reason) ? reason : "other";
}
