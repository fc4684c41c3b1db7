import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { ROOT_CONTEXT, SpanStatusCode, type Context } from "@opentelemetry/api";
import { Determinism, ErrorCode, Priority, StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import type { Budgets, CreateTaskRequest, TaskEvent, TaskMetrics } from "../../contracts/gen/llama_orch/v1/task.js";
import type { GetPoolHealthResponse } from "../../contracts/gen/llama_orch/v1/pool.js";
import { SubmitRequest, type SubmitResponse } from "../../contracts/gen/llama_orch/v1/worker.js";
import { engines, priorities } from "../../contracts/enums.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { correlationMetadata, OrchError } from "../../contracts/runtime/metadata.js";
import { startSpan, traceIdOf } from "../../contracts/runtime/trace-context.js";
import type { CoreMetrics } from "../metrics.js";
import { metricLabels, place, type PlacementDecision, type PlacementRequest } from "../placement/placement.js";
import type { Replica } from "../registry/replica.js";
import type { ReplicaRegistry } from "../registry/replica-registry.js";
import type { SlotLease } from "../registry/slot-lease.js";
import type { BudgetsRemaining, SessionStore } from "../sessions/session-store.js";
import { Task } from "../tasks/task.js";
import type { TraceRecorder } from "../tasks/trace-recorder.js";
import { PoolState } from "./pool-state.js";
import { onQueueFull, type QueueFullPolicy } from "./queue-policy.js";
import { onTimeProbability, predictQueueStartsMs, ThroughputEstimator } from "./throughput-estimator.js";
import { ERROR_CODE_OF_WORKER_ERROR, isRetriableBeforeStart } from "./worker-errors.js";

export interface SchedulerOptions {
  /** Bound of each pool's queue (both priority classes together). */
  queueCapacity: number;
  /** What a full queue does with one more task. */
  queuePolicy: QueueFullPolicy;
  /** How long a finished task's events stay readable. */
  taskRetentionMs: number;
  /** Upper bound of tasks kept in memory; the oldest finished ones go first. */
  maxRetainedTasks: number;
  /** Attempts for work that fails before producing anything (replica busy or gone). */
  maxDispatchAttempts: number;
  /** Watchdog: longest a task may run from dispatch (0 = no limit). */
  wallTimeoutMs: number;
  /** Watchdog: longest a running task may go without a token (0 = no limit). */
  idleTimeoutMs: number;
  /** Cadence of metrics frames for running tasks (0 = only on events). */
  metricsIntervalMs: number;
  /** A task whose every stream closed is cancelled after this long unless a client comes back (0 = at once). */
  disconnectGraceMs: number;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = {
  queueCapacity: 256,
  queuePolicy: "reject",
  taskRetentionMs: 10 * 60_000,
  maxRetainedTasks: 10_000,
  maxDispatchAttempts: 5,
  wallTimeoutMs: 10 * 60_000,
  idleTimeoutMs: 60_000,
  metricsIntervalMs: 1_000,
  disconnectGraceMs: 5_000,
};

/** Delay before re-dispatching work a replica refused, so its slot can come back. */
const REDISPATCH_DELAY_MS = 20;
/** Queue movement is reported at most this often per pool. */
const QUEUE_FRAME_INTERVAL_MS = 50;
/** How far down a queue dispatch looks for work that fits a free replica. */
const DISPATCH_SCAN_LIMIT = 64;

type Terminal = Extract<TaskEvent["kind"], { $case: "end" } | { $case: "error" }>;

export interface Admission {
  task: Task;
  queuePosition: number;
  predictedStartMs: number;
  budgets: BudgetsRemaining;
}

/**
 * Owns every task and pool queue: admission, placement, dispatch to replicas,
 * relaying replica events into each task's log, progress frames, watchdog,
 * cancel. All mutation of tasks and queues happens here, synchronously, so
 * ordering questions have one answer.
 */
export class Scheduler {
  private readonly tasks = new Map<string, Task>();
  private readonly running = new Set<Task>();
  private readonly pools = new Map<string, PoolState>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly estimator = new ThroughputEstimator();
  /** The catalog's refusals (retired or untrusted models), when a catalog is attached. */
  private admissionCheck: ((modelRef: string) => OrchError | undefined) | undefined;
  /** What to say (or do) when no pool serves a task's model. */
  private unservedModel: ((request: CreateTaskRequest) => OrchError | undefined) | undefined;
  private traceRecorder: TraceRecorder | undefined;

  constructor(
    private readonly registry: ReplicaRegistry,
    private readonly sessions: SessionStore,
    private readonly metrics: CoreMetrics,
    private readonly logger: Logger,
    private readonly options: SchedulerOptions = DEFAULT_SCHEDULER_OPTIONS,
  ) {
    registry.on("change", (replica: Replica) => {
      this.poolFor(replica);
      this.updateReadyGauge(replica.poolId);
      this.dispatch(replica.poolId);
    });
    registry.on("removed", (replica: Replica) => this.replacePoolOrphans(replica.poolId));
    const tick = Math.max(50, Math.min(1_000, ...[options.wallTimeoutMs, options.idleTimeoutMs].filter((v) => v > 0).map((v) => v / 4)));
    this.every(tick, () => this.watchdog());
    if (options.metricsIntervalMs > 0) this.every(options.metricsIntervalMs, () => this.progressFrames());
  }

  attach(hooks: {
    admissionCheck?: (modelRef: string) => OrchError | undefined;
    unservedModel?: (request: CreateTaskRequest) => OrchError | undefined;
    traceRecorder?: TraceRecorder;
  }): void {
    this.admissionCheck = hooks.admissionCheck ?? this.admissionCheck;
    this.unservedModel = hooks.unservedModel ?? this.unservedModel;
    this.traceRecorder = hooks.traceRecorder ?? this.traceRecorder;
  }

  /** Nothing queued or running, not draining or reloading: free to be repurposed. */
  isIdle(poolId: string): boolean {
    const pool = this.pools.get(poolId);
    if (!pool || pool.draining || pool.reloadState !== "idle" || pool.queue.size > 0) return false;
    return ![...this.running].some((t) => t.poolId === poolId);
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
    if (request.maxTokens > request.ctx) {
      throw this.reject(
        engineName,
        "ctx_exceeded",
        OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `max_tokens ${request.maxTokens} does not fit in ctx ${request.ctx}; raise ctx or lower max_tokens`, { field: "/max_tokens" }),
      );
    }
    const refusal = this.admissionCheck?.(request.modelRef);
    if (refusal) throw this.reject(engineName, refusal.detail.code === ErrorCode.ERROR_CODE_MODEL_DEPRECATED ? "model_deprecated" : "untrusted_artifact", refusal);
    const decision = this.placeTask(request, false);
    if (decision.outcome === "infeasible" && decision.code === ErrorCode.ERROR_CODE_POOL_UNAVAILABLE && !this.registry.all().some((r) => r.servesModel(request.modelRef))) {
      const advice = this.unservedModel?.(request);
      if (advice) throw this.reject(engineName, "model_not_loaded", advice);
    }
    if (decision.outcome === "infeasible") {
      // The per-replica reasons go to the log, where an operator can see why nothing fit.
      this.logger.info({ event: "placement_infeasible", job_id: request.taskId, rejections: decision.rejections }, `no replica can take task ${request.taskId}`);
      throw this.reject(
        engineName,
        reasonLabel(decision.code),
        OrchError.of(decision.code, decision.message, {
          field: decision.field ?? "",
          engine: request.engine,
          retriable: decision.code === ErrorCode.ERROR_CODE_POOL_UNREADY,
          ...(decision.code === ErrorCode.ERROR_CODE_POOL_UNREADY ? { retryAfterMs: 1_000 } : {}),
        }),
      );
    }
    const pool = this.pools.get(decision.poolId) ?? this.poolFor(this.registry.get(decision.replicaId)!);
    let session;
    try {
      session = this.sessions.admitTurn(request.sessionId);
    } catch (err) {
      throw this.reject(engineName, (err as OrchError).detail?.policyLabel === "session-turns" ? "session_turns" : "session_budget", err as OrchError);
    }
    try {
      return this.enqueue(request, pool, correlationId, traceParent, session.budgets, engineName);
    } catch (err) {
      this.sessions.releaseTurn(request.sessionId);
      throw err;
    }
  }

  private enqueue(request: CreateTaskRequest, pool: PoolState, correlationId: string, traceParent: Context, budgets: BudgetsRemaining, engineName: string): Admission {
    const predictedDurationMs = this.estimator.predictDurationMs(this.replicaIdsOf(pool.id), tokensExpected(request));
    // Deadline feasibility, on measured throughput only: with nothing measured yet the task gets the benefit of the doubt.
    const position = request.priority === Priority.PRIORITY_BATCH ? pool.queue.size : pool.queue.sizeOf(Priority.PRIORITY_INTERACTIVE);
    const ahead = this.queuedTasks(pool).slice(0, position).map((t) => t.predictedDurationMs);
    const predictedStart = this.predictStarts(pool, [...ahead, predictedDurationMs]).at(-1)!;
    if (predictedDurationMs !== undefined && predictedStart + predictedDurationMs > request.deadlineMs) {
      throw this.reject(
        engineName,
        "deadline_unmet",
        OrchError.of(
          ErrorCode.ERROR_CODE_DEADLINE_UNMET,
          `predicted start in ${Math.round(predictedStart)} ms plus ${Math.round(predictedDurationMs)} ms of decode exceeds deadline_ms ${request.deadlineMs}; allow more time, lower max_tokens, or retry later`,
          { field: "/deadline_ms", engine: request.engine, retriable: true },
        ),
      );
    }
    if (pool.queue.isFull) this.makeRoom(pool, request, engineName);

    const { span, ctx } = startSpan("llama_orch.task", traceParent, { "llama_orch.task_id": request.taskId, "llama_orch.pool_id": pool.id });
    const task = new Task(request, pool.id, correlationId, { predictedDurationMs, span, traceContext: ctx });
    pool.queue.enqueue(task.id, request.priority, task);
    this.tasks.set(task.id, task);
    this.evictIfOverCapacity();
    const queuePosition = pool.queue.positionOf(task.id) ?? 0;
    const predictedStartMs = Math.round(this.predictStarts(pool, this.queuedTasks(pool).map((t) => t.predictedDurationMs))[queuePosition] ?? 0);
    task.notePosition(queuePosition);
    task.log.append({ $case: "started", started: { queuePosition, predictedStartMs } });
    this.metrics.tasksEnqueued.inc({ ...this.poolLabels(pool), replica_id: "", priority: priorities.name(request.priority) });
    this.logger.info(
      { ...this.taskFields(task), queue_position: queuePosition, predicted_start_ms: predictedStartMs, event: "admitted" },
      `task ${task.id} admitted to pool ${pool.id} at queue position ${queuePosition}, predicted start in ${predictedStartMs} ms`,
    );
    this.dispatch(pool.id);
    this.updateQueueGauge(pool);
    return { task, queuePosition, predictedStartMs, budgets };
  }

  /** Applies the full-queue policy: evicts a victim or throws the backpressure error. */
  private makeRoom(pool: PoolState, request: CreateTaskRequest, engineName: string): void {
    const policy = this.options.queuePolicy;
    this.metrics.backpressure.inc({ engine: engineName, policy });
    const outcome = onQueueFull(pool.queue, policy, request.priority);
    const code = policy === "drop-lru" ? ErrorCode.ERROR_CODE_QUEUE_FULL_DROP_LRU : ErrorCode.ERROR_CODE_ADMISSION_REJECT;
    if (outcome.action === "refuse") {
      const retryAfterMs = this.retryAfterMs(pool);
      const why = policy === "reject" ? "" : policy === "drop-lru" ? " and holds no batch task to drop" : " and a batch task cannot displace another";
      throw this.reject(
        engineName,
        "queue_full",
        OrchError.of(code, `queue of pool ${pool.id} is full (${pool.queue.capacity} tasks)${why}; retry in ${retryAfterMs} ms`, {
          engine: request.engine,
          retriable: true,
          retryAfterMs,
          policyLabel: policy,
        }),
      );
    }
    const victim = outcome.victim;
    pool.queue.remove(outcome.victimId);
    this.sessions.releaseTurn(victim.request.sessionId);
    this.finish(victim, {
      $case: "error",
      error: { traceArtifactId: "", code, message: `dropped from the full queue of pool ${pool.id} to admit newer work (policy ${policy}); resubmit later`, engine: victim.request.engine, retriable: true },
    });
    this.metrics.tasksCanceled.inc({ ...this.replicaLabels(victim, undefined), reason: "queue_full" });
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
    const decodeTimeMs = task.dispatchedAt ? Date.now() - task.dispatchedAt : 0;
    this.finish(task, { $case: "end", end: { traceArtifactId: "", tokensOut: task.tokensOut, decodeTimeMs, tokensIn: task.tokensIn, stopReason: StopReason.STOP_REASON_CANCELED } });
    call?.cancel();
    this.metrics.tasksCanceled.inc({ ...this.replicaLabels(task, replica), reason: normalizeReason(reason) });
    this.logger.info({ ...this.taskFields(task), event: "canceled", reason }, `task ${task.id} cancelled (${reason}) after ${task.tokensOut} tokens`);
    return true;
  }

  /** A client started reading the task's stream. */
  streamOpened(task: Task): void {
    task.readerJoined();
  }

  /**
   * A client stopped reading before the stream ended. When it was the last,
   * the task is cancelled after the grace period unless someone reconnects.
   */
  streamAbandoned(task: Task): void {
    task.readerLeft(this.options.disconnectGraceMs, () => this.cancel(task.id, "disconnect"));
  }

  /** The session's budgets as the task stands now: its own usage so far is already spent. */
  liveBudgets(task: Task): Budgets | undefined {
    const s = this.sessions.get(task.request.sessionId);
    if (!s) return undefined;
    const b = s.budgets;
    const running = task.state === "running";
    const tokens = running ? task.tokensIn + task.tokensOut : 0;
    const ms = running ? Date.now() - task.dispatchedAt : 0;
    return {
      tokensRemaining: b.tokens === undefined ? undefined : Math.floor(b.tokens - tokens),
      timeRemainingMs: b.timeMs === undefined ? undefined : Math.floor(b.timeMs - ms),
      costRemaining: b.cost === undefined ? undefined : b.cost - (tokens / 1000) * this.sessions.costPerThousandTokens,
    };
  }

  /** Stops everything; used at shutdown. */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    for (const p of this.pools.values()) if (p.drainTimer) clearTimeout(p.drainTimer);
    for (const task of this.tasks.values()) {
      if (task.state !== "finished") {
        task.call?.cancel();
        this.finish(task, { $case: "error", error: { traceArtifactId: "", code: ErrorCode.ERROR_CODE_INTERNAL, message: "core is shutting down", engine: task.request.engine, retriable: true } });
      }
    }
  }

  queueDepth(poolId: string): number {
    return this.pools.get(poolId)?.queue.size ?? 0;
  }

  /** The pool, or NOT_FOUND: pools exist once a replica has registered into them. */
  pool(poolId: string): PoolState {
    const pool = this.pools.get(poolId);
    if (!pool) throw OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `unknown pool ${poolId}`);
    return pool;
  }

  /**
   * Drain: the pool admits nothing from now on; work already admitted may
   * finish until the deadline, then whatever is left ends with
   * POOL_UNAVAILABLE and is cancelled on its replica.
   */
  drain(poolId: string, deadlineMs: number): { inFlight: number; queued: number } {
    const pool = this.pool(poolId);
    pool.draining = true;
    pool.drainDeadlineAt = Date.now() + deadlineMs;
    if (pool.drainTimer) clearTimeout(pool.drainTimer);
    pool.drainTimer = setTimeout(() => this.endDrain(pool), deadlineMs);
    pool.drainTimer.unref();
    const inFlight = [...this.running].filter((t) => t.poolId === poolId).length;
    this.logger.info(
      { event: "pool_draining", pool_id: poolId, deadline_ms: deadlineMs, in_flight: inFlight, queued: pool.queue.size },
      `pool ${poolId} draining: ${inFlight} running and ${pool.queue.size} queued tasks have ${deadlineMs} ms to finish`,
    );
    this.updateReadyGauge(poolId);
    return { inFlight, queued: pool.queue.size };
  }

  private endDrain(pool: PoolState): void {
    pool.drainTimer = undefined;
    const leftovers = [...this.tasks.values()].filter((t) => t.poolId === pool.id && t.state !== "finished");
    for (const task of leftovers) {
      const call = task.call;
      this.metrics.tasksCanceled.inc({ ...this.replicaLabels(task, task.replica), reason: "operator" });
      this.finish(task, {
        $case: "error",
        error: { traceArtifactId: "", code: ErrorCode.ERROR_CODE_POOL_UNAVAILABLE, message: `pool ${pool.id} was drained and the task did not finish before the drain deadline`, engine: task.request.engine, retriable: true },
      });
      call?.cancel();
    }
    this.logger.info({ event: "pool_drained", pool_id: pool.id, cancelled: leftovers.length }, `pool ${pool.id} drained; ${leftovers.length} unfinished tasks cancelled`);
  }

  /** Reload bookkeeping: a reloading pool is not Ready; a successful reload also ends a drain. */
  setReloadState(poolId: string, state: PoolState["reloadState"], outcome?: { error?: string; succeeded?: boolean }): void {
    const pool = this.pool(poolId);
    pool.reloadState = state;
    if (outcome?.error !== undefined) pool.lastReloadError = outcome.error;
    if (outcome?.succeeded) {
      pool.lastReloadError = "";
      pool.draining = false;
      pool.drainDeadlineAt = undefined;
      if (pool.drainTimer) clearTimeout(pool.drainTimer);
      pool.drainTimer = undefined;
    }
    this.updateReadyGauge(poolId);
    if (state === "idle") this.dispatch(poolId);
  }

  /** Drains every pool whose replicas serve `modelRef` (a model retired in the catalog). */
  drainPoolsServing(modelRef: string, deadlineMs: number): number {
    let n = 0;
    for (const pool of this.pools.values()) {
      const replicas = this.registry.inPool(pool.id);
      if (replicas.length > 0 && replicas.every((r) => !r.registration.servesAnyModel && r.modelRef === modelRef)) {
        this.drain(pool.id, deadlineMs);
        n++;
      }
    }
    return n;
  }

  poolHealth(poolId: string): GetPoolHealthResponse {
    const pool = this.pool(poolId);
    const replicas = this.registry.inPool(poolId);
    const reloading = pool.reloadState !== "idle";
    return {
      live: replicas.some((r) => r.health.live),
      ready: !reloading && replicas.some((r) => r.isReady),
      draining: pool.draining,
      metrics: {
        queueDepth: pool.queue.size,
        slotsTotal: replicas.reduce((n, r) => n + r.slotsTotal, 0),
        slotsFree: replicas.reduce((n, r) => n + (r.isReady ? r.freeSlots : 0), 0),
        modelRef: replicas[0]?.modelRef ?? "",
        engine: pool.engine,
        reloadState: pool.reloadState,
        lastReloadError: pool.lastReloadError,
        tasksRunning: [...this.running].filter((t) => t.poolId === poolId).length,
        drainDeadlineMs: pool.drainDeadlineAt === undefined ? undefined : Math.max(0, pool.drainDeadlineAt - Date.now()),
        replicas: replicas
          .sort((a, b) => (a.id < b.id ? -1 : 1))
          .map((r) => ({
            replicaId: r.id,
            address: r.registration.address,
            live: r.health.live,
            ready: r.isReady,
            state: !r.health.live ? "unready" : !r.health.ready ? (r.health.lastError.startsWith("loading") ? "loading" : "unready") : r.freeSlots === 0 ? "busy" : "ready",
            lastError: r.health.lastError,
            slotsTotal: r.slotsTotal,
            slotsFree: r.freeSlots,
            modelRef: r.modelRef,
            engineVersion: r.engineVersion,
          })),
      },
    };
  }

  private placeTask(request: CreateTaskRequest, needFreeSlot: boolean, poolId?: string): PlacementDecision {
    const req: PlacementRequest = {
      engine: request.engine,
      modelRef: request.modelRef,
      ctx: request.ctx,
      workload: request.workload,
      overrides: request.placement,
      sessionReplicaId: this.sessions.get(request.sessionId)?.lastReplicaId,
      requiredFeatures: request.determinism === Determinism.DETERMINISM_STRICT ? ["seed"] : [],
      needFreeSlot,
    };
    const replicas = poolId === undefined ? this.registry.all() : this.registry.inPool(poolId);
    const decision = place(
      req,
      replicas.map((r) => {
        const pool = this.pools.get(r.poolId);
        return r.snapshot(pool?.draining ?? false, pool !== undefined && pool.reloadState !== "idle");
      }),
    );
    if (!needFreeSlot) {
      this.metrics.placementCandidates.set(replicas.length);
      this.metrics.placementDecisions.inc(metricLabels(decision));
    }
    return decision;
  }

  /** Starts queued work on free replicas: in queue order, skipping work no free replica can take yet. */
  private dispatch(poolId: string): void {
    const pool = this.pools.get(poolId);
    if (!pool || pool.queue.size === 0) return;
    let scanned = 0;
    let moved = false;
    for (const [id, task] of [...pool.queue.entries()]) {
      if (scanned++ >= DISPATCH_SCAN_LIMIT || !this.registry.inPool(poolId).some((r) => r.isReady && r.freeSlots > 0)) break;
      const decision = this.placeTask(task.request, true, poolId);
      if (decision.outcome !== "placed") continue;
      const replica = this.registry.get(decision.replicaId)!;
      const lease = replica.claimSlot();
      if (!lease) continue;
      pool.queue.remove(id);
      moved = true;
      this.run(task, replica, lease, decision.kvWarm, decision.why);
    }
    if (moved) {
      this.updateQueueGauge(pool);
      this.queueMoved(pool);
    }
  }

  private run(task: Task, replica: Replica, lease: SlotLease, kvWarm: boolean, why: string): void {
    const req = task.request;
    // Opened before the task counts as running, so the attempt holds its call from the start; the stream's events come later.
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
    task.markRunning({ lease, replica, call, kvWarm }, Date.now());
    this.running.add(task);
    task.log.append({
      $case: "metrics",
      metrics: {
        ...this.budgetFields(task),
        queueDepth: this.queueDepth(task.poolId),
        kvWarmth: kvWarm,
        poolId: replica.poolId,
        replicaId: replica.id,
        engineVersion: replica.engineVersion,
        onTimeProbability: this.onTime(task),
      },
    });
    this.metrics.tasksStarted.inc({ ...this.replicaLabels(task, replica), priority: priorities.name(req.priority) });
    this.logger.info(
      { ...this.taskFields(task), event: "placed", attempt: task.attempts, kv_warmth: kvWarm, placement_why: why },
      `task ${task.id} placed on replica ${replica.id} of pool ${replica.poolId}${kvWarm ? " (session KV warm)" : ""}`,
    );
    const current = () => task.call === call && task.state === "running";
    call.on("data", (m: SubmitResponse) => {
      if (current()) this.onWorkerEvent(task, replica, m);
    });
    call.on("error", (err: ServiceError) => {
      if (!current()) return;
      if (task.tokensOut === 0 && err.code === GrpcStatus.UNAVAILABLE) {
        this.retryOrFail(task, `replica ${replica.id} unreachable: ${err.details}`);
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
        task.recordPromptTokens(ev.started.tokensIn);
        return;
      case "tokens": {
        const n = ev.tokens.texts.length;
        if (n === 0) return;
        const now = Date.now();
        if (task.recordTokens(n, now)) this.metrics.firstTokenMs.observe(this.latencyLabels(task, replica), now - task.admittedAt);
        task.log.append({ $case: "tokens", tokens: ev.tokens });
        return;
      }
      case "metrics":
        return;
      case "end":
        task.recordPromptTokens(ev.end.tokensIn || task.tokensIn);
        this.finish(task, {
          $case: "end",
          end: { traceArtifactId: "", tokensOut: task.tokensOut, decodeTimeMs: ev.end.decodeTimeMs, tokensIn: task.tokensIn, stopReason: ev.end.stopReason },
        });
        return;
      case "error":
        if (task.tokensOut === 0 && isRetriableBeforeStart(ev.error.kind)) {
          this.retryOrFail(task, ev.error.message);
          return;
        }
        this.finish(task, {
          $case: "error",
          error: { traceArtifactId: "", code: ERROR_CODE_OF_WORKER_ERROR[ev.error.kind], message: ev.error.message, engine: task.request.engine, retriable: ev.error.retriable },
        });
        return;
      default:
        return;
    }
  }

  /** Work that produced nothing goes back to the head of its queue, a bounded number of times. */
  private retryOrFail(task: Task, why: string): void {
    const call = task.call;
    task.abandonAttempt();
    this.running.delete(task);
    call?.cancel();
    if (task.attempts >= this.options.maxDispatchAttempts) {
      // The attempts ran, so the session is charged for them as for any run.
      this.finish(
        task,
        {
          $case: "error",
          error: { traceArtifactId: "", code: ErrorCode.ERROR_CODE_REPLICA_EXHAUSTED, message: `no replica could start the task after ${task.attempts} attempts: ${why}`, engine: task.request.engine, retriable: true },
        },
        { ran: true },
      );
      return;
    }
    const pool = this.pools.get(task.poolId)!;
    pool.queue.requeueFront(task.id, task.request.priority, task);
    this.logger.warn({ ...this.taskFields(task), event: "requeued", reason: why }, `task ${task.id} requeued: ${why}`);
    this.later(REDISPATCH_DELAY_MS, () => this.dispatch(pool.id));
  }

  private workerReset(task: Task, replica: Replica, why: string): Terminal {
    return {
      $case: "error",
      error: { traceArtifactId: "", code: ErrorCode.ERROR_CODE_WORKER_RESET, message: `replica ${replica.id} went away mid-stream: ${why}`, engine: task.request.engine, retriable: true },
    };
  }

  /** Ends running tasks that ran too long or stopped producing, and cancels them on their replica. */
  private watchdog(): void {
    const now = Date.now();
    const { wallTimeoutMs, idleTimeoutMs } = this.options;
    for (const task of [...this.running]) {
      const wall = wallTimeoutMs > 0 && now - task.dispatchedAt > wallTimeoutMs;
      const idle = idleTimeoutMs > 0 && now - task.lastProgressAt > idleTimeoutMs;
      if (!wall && !idle) continue;
      const call = task.call;
      const message = wall
        ? `task ran longer than the wall timeout of ${wallTimeoutMs} ms and was stopped`
        : `no token for ${now - task.lastProgressAt} ms (idle timeout ${idleTimeoutMs} ms); the task was stopped`;
      this.metrics.tasksCanceled.inc({ ...this.replicaLabels(task, task.replica), reason: "watchdog" });
      this.finish(task, { $case: "error", error: { traceArtifactId: "", code: ErrorCode.ERROR_CODE_DECODE_TIMEOUT, message, engine: task.request.engine, retriable: true } });
      call?.cancel();
    }
  }

  /** The single exit of every task: terminal event, slot release, accounting, retention. */
  /** `ran`: the task ran although it is not running now (its last attempt was abandoned), so its session is charged. */
  private finish(task: Task, terminal: Terminal, opts: { ran?: boolean } = {}): void {
    if (task.state === "finished") return;
    const replica = task.replica;
    const wasRunning = task.state === "running";
    if (task.state === "queued") {
      const pool = this.pools.get(task.poolId);
      if (pool?.queue.remove(task.id)) {
        this.updateQueueGauge(pool);
        this.queueMoved(pool);
      }
    }
    task.finish(Date.now());
    this.running.delete(task);
    if (this.traceRecorder) terminal = withTraceId(terminal, this.traceRecorder.record(task, terminal));
    task.log.append(terminal);
    if (terminal.$case === "error") task.span?.setStatus({ code: SpanStatusCode.ERROR, message: terminal.error.message });
    task.span?.setAttribute("llama_orch.tokens_out", task.tokensOut);
    task.span?.end();
    const decodeTimeMs = task.dispatchedAt ? task.finishedAt - task.dispatchedAt : 0;
    const pool = this.pools.get(task.poolId);
    if (replica && wasRunning) {
      const labels = this.replicaLabels(task, replica);
      this.metrics.tokensOut.inc(labels, task.tokensOut);
      this.metrics.tokensIn.inc(labels, task.tokensIn);
      this.metrics.decodeMs.observe(this.latencyLabels(task, replica), decodeTimeMs);
      pool?.recordCompletion(task.finishedAt);
      if (terminal.$case === "end" && terminal.end.stopReason !== StopReason.STOP_REASON_CANCELED && task.firstTokenAt) {
        this.estimator.record(replica.id, { firstTokenMs: task.firstTokenAt - task.dispatchedAt, tokens: task.tokensOut, decodeMs: decodeTimeMs });
      }
    }
    if (wasRunning || opts.ran || task.tokensOut > 0) {
      this.sessions.recordUsage(task.request.sessionId, {
        tokensIn: task.tokensIn,
        tokensOut: task.tokensOut,
        decodeTimeMs,
        ...(replica && task.tokensOut > 0 ? { replicaId: replica.id } : {}),
      });
    }
    const fields = { ...this.taskFields(task), tokens_in: task.tokensIn, tokens_out: task.tokensOut, decode_time_ms: decodeTimeMs };
    if (terminal.$case === "error") {
      this.logger.warn({ ...fields, event: "failed", code: terminal.error.code, error: terminal.error.message }, `task ${task.id} failed: ${terminal.error.message}`);
    } else {
      this.logger.info({ ...fields, event: "finished" }, `task ${task.id} finished with ${task.tokensOut} tokens`);
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.tasks.delete(task.id);
    }, this.options.taskRetentionMs);
    t.unref();
    this.timers.add(t);
    if (replica && wasRunning) this.dispatch(task.poolId);
  }

  /** Reports new positions and predicted starts to queued tasks whose place changed, at a bounded rate. */
  private queueMoved(pool: PoolState): void {
    if (pool.frameTimer) return;
    pool.frameTimer = setTimeout(() => {
      pool.frameTimer = undefined;
      const queued = this.queuedTasks(pool);
      const starts = this.predictStarts(pool, queued.map((t) => t.predictedDurationMs));
      queued.forEach((task, position) => {
        if (!task.notePosition(position)) return;
        task.log.append({
          $case: "metrics",
          metrics: {
            ...this.budgetFields(task),
            poolId: pool.id,
            replicaId: "",
            engineVersion: "",
            queueDepth: queued.length,
            queuePosition: position,
            predictedStartMs: Math.round(starts[position]!),
            onTimeProbability: this.onTime(task, starts[position]),
          },
        });
      });
    }, QUEUE_FRAME_INTERVAL_MS);
  }

  /** The periodic metrics frame of each running task: how likely it finishes in time, and its budgets. */
  private progressFrames(): void {
    for (const task of this.running) {
      task.log.append({
        $case: "metrics",
        metrics: { ...this.budgetFields(task), onTimeProbability: this.onTime(task), poolId: task.poolId, replicaId: task.replica?.id ?? "", engineVersion: task.replica?.engineVersion ?? "" },
      });
    }
  }

  /** Predicted start of each queued task (durations in queue order) given the pool's slots and running work. */
  private predictStarts(pool: PoolState, durationsMs: readonly (number | undefined)[]): number[] {
    const replicas = this.registry.inPool(pool.id).filter((r) => r.isReady);
    const slots = replicas.reduce((n, r) => n + r.slotsTotal, 0);
    const now = Date.now();
    const busy: number[] = [];
    for (const t of this.running) {
      if (t.poolId === pool.id) busy.push(Math.max(0, (t.predictedDurationMs ?? 0) - (now - t.dispatchedAt)));
    }
    busy.sort((a, b) => a - b);
    return predictQueueStartsMs({ slots, busyRemainingMs: busy, durationsMs: durationsMs.map((d) => d ?? 0) });
  }

  /** P(the task ends within its deadline_ms of admission); undefined until throughput was measured. */
  private onTime(task: Task, predictedStartMs = 0): number | undefined {
    if (task.predictedDurationMs === undefined) return undefined;
    const now = Date.now();
    const elapsed = now - task.admittedAt;
    const remaining =
      task.state === "running" ? Math.max(0, task.predictedDurationMs - (now - task.dispatchedAt)) : predictedStartMs + task.predictedDurationMs;
    const spread = this.estimator.relativeSpread(this.replicaIdsOf(task.poolId));
    return onTimeProbability(remaining, task.request.deadlineMs - elapsed, spread);
  }

  private budgetFields(task: Task): Pick<TaskMetrics, "tokensBudgetRemaining" | "timeBudgetRemainingMs" | "costBudgetRemaining"> {
    const b = this.liveBudgets(task);
    if (!b) return {};
    return { tokensBudgetRemaining: b.tokensRemaining, timeBudgetRemainingMs: b.timeRemainingMs, costBudgetRemaining: b.costRemaining };
  }

  /**
   * The advised wait after a full-queue refusal: the pool's measured time
   * between completions (one place frees per completion); before any
   * completion, a predicted task duration per slot; a second when nothing is
   * known yet.
   */
  private retryAfterMs(pool: PoolState): number {
    const measured = pool.completionIntervalMs();
    if (measured !== undefined) return Math.max(1, Math.round(measured));
    const slots = this.slotsTotal(pool.id);
    const duration = this.estimator.predictDurationMs(this.replicaIdsOf(pool.id), 256);
    if (duration !== undefined && slots > 0) return Math.max(1, Math.round(duration / slots));
    return 1_000;
  }

  /** When a pool lost its last replica, its queued work moves to another pool that can serve it, if any. */
  private replacePoolOrphans(poolId: string): void {
    const pool = this.pools.get(poolId);
    if (!pool || pool.queue.size === 0 || this.registry.inPool(poolId).length > 0) return;
    for (const task of this.queuedTasks(pool)) {
      const decision = this.placeTask(task.request, false);
      if (decision.outcome !== "placed" || decision.poolId === poolId) continue;
      const target = this.pools.get(decision.poolId);
      if (!target || target.queue.isFull) continue;
      pool.queue.remove(task.id);
      task.moveToPool(target.id);
      target.queue.enqueue(task.id, task.request.priority, task);
      this.logger.info({ ...this.taskFields(task), event: "replaced" }, `task ${task.id} moved from pool ${poolId} (no replicas left) to pool ${target.id}`);
      this.dispatch(target.id);
    }
    this.updateQueueGauge(pool);
  }

  private queuedTasks(pool: PoolState): Task[] {
    return [...pool.queue.entries()].map(([, t]) => t);
  }

  private replicaIdsOf(poolId: string): string[] {
    return this.registry.inPool(poolId).map((r) => r.id);
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
    const pool = this.pools.get(poolId);
    const usable = pool !== undefined && !pool.draining && pool.reloadState === "idle";
    this.metrics.replicasReady.set({ pool_id: poolId }, usable ? this.registry.inPool(poolId).filter((r) => r.isReady).length : 0);
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.add(t);
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
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

function withTraceId(t: Terminal, traceArtifactId: string): Terminal {
  return t.$case === "end" ? { $case: "end", end: { ...t.end, traceArtifactId } } : { $case: "error", error: { ...t.error, traceArtifactId } };
}

function tokensExpected(r: CreateTaskRequest): number {
  return r.expectedTokens !== undefined && r.expectedTokens > 0 ? Math.min(r.expectedTokens, r.maxTokens) : r.maxTokens;
}

/** Keeps the `reason` label within its small fixed budget. */
function normalizeReason(reason: string): string {
  return ["client", "disconnect", "operator", "watchdog", "shutdown", "queue_full"].includes(reason) ? reason : "other";
}

/** `tasks_rejected_total{reason}` for a placement refusal. */
function reasonLabel(code: ErrorCode): string {
  switch (code) {
    case ErrorCode.ERROR_CODE_POOL_UNAVAILABLE:
      return "pool_unavailable";
    case ErrorCode.ERROR_CODE_POOL_UNREADY:
      return "pool_unready";
    case ErrorCode.ERROR_CODE_INVALID_PARAMS:
      return "ctx_exceeded";
    default:
      return "placement";
  }
}
