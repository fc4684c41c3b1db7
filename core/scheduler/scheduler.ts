import { ROOT_CONTEXT, type Context } from "@opentelemetry/api";
import { Priority } from "../../contracts/gen/llama_orch/v1/common.js";
import { TaskState, type Budgets, type CreateTaskRequest, type TaskSummary } from "../../contracts/gen/llama_orch/v1/task.js";
import type { GetPoolHealthResponse, PoolSummary } from "../../contracts/gen/llama_orch/v1/pool.js";
import { engines, priorities } from "../../contracts/enums.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import type { OrchError } from "../../contracts/runtime/metadata.js";
import { SPAN_ATTRIBUTES, startSpan } from "../../contracts/runtime/trace-context.js";
import type { CoreMetrics } from "../metrics.js";
import type { Replica } from "../registry/replica.js";
import type { ReplicaRegistry } from "../registry/replica-registry.js";
import type { BudgetsRemaining, SessionStore } from "../sessions/session-store.js";
import { Task } from "../tasks/task.js";
import type { Recovery } from "../journal/task-journal.js";
import type { Admission, SchedulerHooks, Submitter } from "./admission-types.js";
export type { Admission, SchedulerHooks, Submitter } from "./admission-types.js";
import {
  catalogRefusal,
  ctxRefusal,
  deadlineRefusal,
  droppedFromQueue,
  duplicateTaskRefusal,
  placementRefusal,
  queueFullRefusal,
  sessionRefusal,
  shutdownRefusal,
  unservedModelRefusal,
  type Refusal,
} from "./admission.js";
import { Dispatcher } from "./dispatcher.js";
import { PoolControl } from "./pool-control.js";
import { PoolGauges } from "./pool-gauges.js";
import type { PoolState, ReloadState } from "./pool-state.js";
import { PoolTable } from "./pool-table.js";
import { Predictions } from "./predictions.js";
import { ProgressFrames } from "./progress-frames.js";
import { onQueueFull } from "./queue-policy.js";
import { DEFAULT_SCHEDULER_OPTIONS, type SchedulerOptions } from "./scheduler-options.js";
import { NO_LABEL_VALUE, poolLabels, replicaLabels, taskLogFields } from "./task-labels.js";
import { TaskLifecycle } from "./task-lifecycle.js";
import { TaskRecovery } from "./task-recovery.js";
import { TaskRunner } from "./task-runner.js";
import { taskSummaryView } from "./task-summaries.js";
import { TaskTable } from "./task-table.js";
import { TimerSet } from "./timer-set.js";

/** Delay before re-dispatching work a replica refused, so its slot can come back. */
const REDISPATCH_DELAY_MS = 20;

/**
 * The one owner of every task and pool queue. All their state changes happen
 * here or in the modules it wires, synchronously, so ordering questions have
 * one answer: admission (its checks are the pure functions of admission.ts,
 * applied here), dispatch, running on a replica, the ways a task ends,
 * predictions and progress frames, and pool control.
 */
export class Scheduler {
  private readonly timers = new TimerSet();
  private readonly tasks: TaskTable;
  private readonly pools: PoolTable;
  private readonly gauges: PoolGauges;
  private readonly predictions: Predictions;
  private readonly frames: ProgressFrames;
  private readonly dispatcher: Dispatcher;
  private readonly lifecycle: TaskLifecycle;
  private readonly poolControl: PoolControl;
  private readonly recovery: TaskRecovery;
  private hooks: SchedulerHooks = {};
  /** Set by beginShutdown: admission refuses everything. */
  private shuttingDown = false;

  constructor(
    private readonly registry: ReplicaRegistry,
    private readonly sessions: SessionStore,
    private readonly metrics: CoreMetrics,
    private readonly logger: Logger,
    private readonly options: SchedulerOptions = DEFAULT_SCHEDULER_OPTIONS,
  ) {
    this.tasks = new TaskTable(options);
    this.pools = new PoolTable(options.queueCapacity);
    this.gauges = new PoolGauges(metrics, registry, this.pools);
    this.predictions = new Predictions(registry, () => this.tasks.running);
    this.frames = new ProgressFrames(sessions, this.predictions);
    const queueChanged = (pool: PoolState) => {
      this.gauges.queueDepth(pool);
      this.frames.queueMoved(pool);
    };
    const dispatch = (poolId: string) => this.dispatcher.dispatch(poolId);
    this.lifecycle = new TaskLifecycle({
      tasks: this.tasks,
      pools: this.pools,
      sessions,
      predictions: this.predictions,
      metrics,
      logger,
      traceRecorder: () => this.hooks.traceRecorder,
      journal: () => this.hooks.journal,
      queueChanged,
      dispatch,
      options,
    });
    const runner = new TaskRunner({
      tasks: this.tasks,
      pools: this.pools,
      frames: this.frames,
      metrics,
      logger,
      finish: this.lifecycle.finish,
      journal: () => this.hooks.journal,
      redispatchSoon: (poolId) => this.timers.later(REDISPATCH_DELAY_MS, () => dispatch(poolId)),
      maxDispatchAttempts: options.maxDispatchAttempts,
    });
    this.dispatcher = new Dispatcher(registry, sessions, this.pools, metrics, (...run) => runner.start(...run), queueChanged);
    this.poolControl = new PoolControl({
      pools: this.pools,
      registry,
      tasks: this.tasks,
      lifecycle: this.lifecycle,
      gauges: this.gauges,
      logger,
      journal: () => this.hooks.journal,
      placeAnywhere: (request) => this.dispatcher.placeAnywhere(request),
      dispatch,
    });
    this.recovery = new TaskRecovery({
      tasks: this.tasks,
      pools: this.pools,
      sessions,
      predictions: this.predictions,
      timers: this.timers,
      logger,
      finish: this.lifecycle.finish,
      queueChanged,
      dispatch,
      resume: (...taken) => runner.resume(...taken),
      reclaimGraceMs: options.reclaimGraceMs,
    });
    this.follow(registry);
    const tick = Math.max(50, Math.min(1_000, ...[options.wallTimeoutMs, options.idleTimeoutMs].filter((v) => v > 0).map((v) => v / 4)));
    this.timers.every(tick, () => this.lifecycle.watchdog());
    // The one sweeper of finished tasks: reads check expiry themselves, so its cadence bounds memory, not what clients see.
    this.timers.every(Math.max(50, Math.min(1_000, options.taskRetentionMs / 4)), () => this.tasks.sweep(Date.now()));
    if (options.metricsIntervalMs > 0) this.timers.every(options.metricsIntervalMs, () => this.frames.running(this.tasks.running));
  }

  /** A replica that changed may take work; a pool that lost its last replica hands its queue on. */
  private follow(registry: ReplicaRegistry): void {
    registry.on("change", (replica: Replica) => {
      const pool = this.pools.ensure(replica);
      this.gauges.replicasReady(replica.poolId);
      this.gauges.replicaSeries(replica);
      this.gauges.queueDepth(pool);
      this.dispatcher.dispatch(replica.poolId);
    });
    registry.on("removed", (replica: Replica) => this.poolControl.replaceOrphans(replica.poolId));
  }

  attach(hooks: SchedulerHooks): void {
    this.hooks = {
      admissionCheck: hooks.admissionCheck ?? this.hooks.admissionCheck,
      unservedModel: hooks.unservedModel ?? this.hooks.unservedModel,
      traceRecorder: hooks.traceRecorder ?? this.hooks.traceRecorder,
      journal: hooks.journal ?? this.hooks.journal,
    };
  }

  /** Puts back what the journal found unfinished at start, before any replica registers. */
  restore(recovery: Recovery): void {
    this.recovery.restore(recovery);
  }

  /** A replica registered with generations it kept while core was away: core takes back those it waits for. */
  reclaim(replica: Replica, heldTaskIds: readonly string[]): void {
    this.recovery.reclaim(replica, heldTaskIds);
  }

  getTask(id: string): Task | undefined {
    return this.tasks.get(id);
  }

  /**
   * Runs admission and enqueues; throws OrchError with a typed code when
   * refused. `submitter`: the key that sent the task (its identity owns the
   * task) and that key's session budgets.
   */
  admit(request: CreateTaskRequest, correlationId: string, traceParent: Context = ROOT_CONTEXT, submitter: Submitter = {}): Admission {
    const engineName = engines.name(request.engine);
    const refuse = (refusal: Refusal | undefined): void => {
      if (refusal) throw this.reject(engineName, refusal);
    };
    refuse(shutdownRefusal(this.shuttingDown));
    refuse(duplicateTaskRefusal(request.taskId, this.tasks.has(request.taskId)));
    refuse(ctxRefusal(request));
    refuse(catalogRefusal(this.hooks.admissionCheck?.(request.modelRef)));
    const decision = this.dispatcher.placeAnywhere(request);
    const servedSomewhere = this.registry.all().some((r) => r.servesModel(request.modelRef));
    refuse(unservedModelRefusal(decision, servedSomewhere, () => this.hooks.unservedModel?.(request)));
    if (decision.outcome === "infeasible") {
      // The per-replica reasons go to the log, where an operator can see why nothing fit.
      this.logger.info(
        { event: "placement_infeasible", job_id: request.taskId, rejections: decision.rejections },
        `no replica can take task ${request.taskId}`,
      );
      throw this.reject(engineName, placementRefusal(decision, request));
    }
    const pool = this.pools.get(decision.poolId) ?? this.pools.ensure(this.registry.get(decision.replicaId)!);
    let session;
    try {
      session = this.sessions.admitTurn(request.sessionId, submitter.budgets);
    } catch (err) {
      throw this.reject(engineName, sessionRefusal(err as OrchError));
    }
    try {
      return this.enqueue(request, pool, { correlationId, traceParent, owner: submitter.owner }, session.budgets, engineName);
    } catch (err) {
      this.sessions.releaseTurn(request.sessionId);
      throw err;
    }
  }

  cancel(taskId: string, reason: string): boolean {
    return this.lifecycle.cancel(taskId, reason);
  }

  streamOpened(task: Task): void {
    this.lifecycle.streamOpened(task);
  }

  streamAbandoned(task: Task): void {
    this.lifecycle.streamAbandoned(task);
  }

  liveBudgets(task: Task): Budgets | undefined {
    return this.frames.liveBudgets(task);
  }

  /**
   * SIGTERM: from now on nothing is admitted (SHUTTING_DOWN, retriable), and
   * queued tasks end at once, so their clients can go elsewhere; running ones
   * may finish until close().
   */
  beginShutdown(): { running: number; queued: number } {
    this.shuttingDown = true;
    const queued = this.tasks.unfinished().filter((t) => t.state === "queued");
    this.lifecycle.shutdown(queued, "core is shutting down and the task had not started; submit it again");
    return { running: this.tasks.running.size, queued: queued.length };
  }

  /** Tasks running on replicas now (what a shutdown waits for). */
  get runningCount(): number {
    return this.tasks.running.size;
  }

  /** Stops everything; what still runs ends with SHUTTING_DOWN. */
  close(): void {
    this.shuttingDown = true;
    this.timers.clearAll();
    this.poolControl.close();
    this.lifecycle.shutdown(this.tasks.unfinished(), "core shut down before the task finished; submit it again");
  }

  queueDepth(poolId: string): number {
    return this.pools.get(poolId)?.queue.size ?? 0;
  }

  /** The pool, or NOT_FOUND: pools exist once a replica has registered into them. */
  pool(poolId: string): PoolState {
    return this.pools.require(poolId);
  }

  isIdle(poolId: string): boolean {
    return this.poolControl.isIdle(poolId);
  }

  drain(poolId: string, deadlineMs: number): { inFlight: number; queued: number } {
    return this.poolControl.drain(poolId, deadlineMs);
  }

  setReloadState(poolId: string, state: ReloadState, outcome?: { error?: string; succeeded?: boolean }): void {
    this.poolControl.setReloadState(poolId, state, outcome);
  }

  drainPoolsServing(modelRef: string, deadlineMs: number): number {
    return this.poolControl.drainPoolsServing(modelRef, deadlineMs);
  }

  poolHealth(poolId: string): GetPoolHealthResponse {
    return this.poolControl.poolHealth(poolId);
  }

  /** Read-only: every pool at a glance, for ListPools, with the predicted wait at the back of its queue. */
  poolSummaries(): PoolSummary[] {
    return this.poolControl.poolSummaries().map((summary) => {
      const pool = this.pools.get(summary.id);
      if (!pool) return summary;
      return { ...summary, predictedWaitMs: this.predictedWaitMs(pool) };
    });
  }

  /** When a task joining the back of the pool's queue would start; undefined while any duration in the way is unmeasured. */
  private predictedWaitMs(pool: PoolState): number | undefined {
    const queued = pool.queuedTasks();
    const durations = queued.map((t) => t.predictedDurationMs);
    const running = this.tasks.unfinished(pool.id).filter((t) => t.state === "running");
    if (durations.some((d) => d === undefined) || running.some((t) => t.predictedDurationMs === undefined)) return undefined;
    if (queued.length === 0 && running.length === 0) return 0;
    return Math.round(this.predictions.startsMs(pool.id, [...durations, 0]).at(-1) ?? 0);
  }

  /** Read-only: copies of the tasks of `state` (unspecified: queued and running) in listing order, for ListTasks. */
  /** `visible`: which tasks the caller may see (its own, unless it is an admin). */
  taskSummaries(state: TaskState, visible: (task: Task) => boolean = () => true): TaskSummary[] {
    const tasks = state === TaskState.TASK_STATE_FINISHED ? this.tasks.retained() : this.tasks.unfinished();
    return taskSummaryView(tasks, this.pools.all(), state, visible);
  }

  /** The deadline check and the full-queue policy, then the task joins its pool's queue and hears its position. */
  private enqueue(
    request: CreateTaskRequest,
    pool: PoolState,
    { correlationId, traceParent, owner }: { correlationId: string; traceParent: Context; owner: string | undefined },
    budgets: BudgetsRemaining,
    engineName: string,
  ): Admission {
    const predictedDurationMs = this.predictions.durationMs(pool.id, request);
    const position = request.priority === Priority.PRIORITY_BATCH ? pool.queue.size : pool.queue.sizeOf(Priority.PRIORITY_INTERACTIVE);
    const ahead = pool
      .queuedTasks()
      .slice(0, position)
      .map((t) => t.predictedDurationMs);
    const predictedStart = this.predictions.startsMs(pool.id, [...ahead, predictedDurationMs]).at(-1)!;
    const late = deadlineRefusal(request, predictedStart, predictedDurationMs);
    if (late) throw this.reject(engineName, late);
    if (pool.queue.isFull) this.makeRoom(pool, request, engineName);

    const { span, ctx } = startSpan("llama_orch.task", traceParent, {
      [SPAN_ATTRIBUTES.taskId]: request.taskId,
      [SPAN_ATTRIBUTES.poolId]: pool.id,
    });
    const task = new Task(request, pool.id, correlationId, { predictedDurationMs, span, traceContext: ctx, owner });
    pool.queue.enqueue(task.id, request.priority, task);
    this.tasks.add(task);
    // Journaled before dispatch, so its admission comes first in the file.
    const durable = this.hooks.journal?.admitted(task) ?? Promise.resolve();
    const queuePosition = pool.queue.positionOf(task.id) ?? 0;
    const starts = this.predictions.startsMs(
      pool.id,
      pool.queuedTasks().map((t) => t.predictedDurationMs),
    );
    const predictedStartMs = Math.round(starts[queuePosition] ?? 0);
    task.notePosition(queuePosition);
    task.log.append({ $case: "started", started: { queuePosition, predictedStartMs } });
    this.metrics.tasksEnqueued.inc({
      ...poolLabels(pool, this.registry.inPool(pool.id)),
      // Counted at admission, before placement chose a replica.
      replica_id: NO_LABEL_VALUE,
      priority: priorities.name(request.priority),
    });
    this.logger.info(
      { ...taskLogFields(task), queue_position: queuePosition, predicted_start_ms: predictedStartMs, event: "admitted" },
      `task ${task.id} admitted to pool ${pool.id} at queue position ${queuePosition}, predicted start in ${predictedStartMs} ms`,
    );
    this.dispatcher.dispatch(pool.id);
    this.gauges.queueDepth(pool);
    return { task, queuePosition, predictedStartMs, budgets, durable };
  }

  /** Applies the full-queue policy: evicts a victim or throws the backpressure error. */
  private makeRoom(pool: PoolState, request: CreateTaskRequest, engineName: string): void {
    const policy = this.options.queuePolicy;
    this.metrics.backpressure.inc({ engine: engineName, policy });
    const outcome = onQueueFull(pool.queue, policy, request.priority);
    if (outcome.action === "refuse") {
      throw this.reject(
        engineName,
        queueFullRefusal({ poolId: pool.id, capacity: pool.queue.capacity }, policy, request, this.predictions.retryAfterMs(pool)),
      );
    }
    const victim = outcome.victim;
    pool.queue.remove(outcome.victimId);
    this.sessions.releaseTurn(victim.request.sessionId);
    this.lifecycle.finish(victim, droppedFromQueue(victim.request, pool.id, policy));
    this.metrics.tasksCanceled.inc({ ...replicaLabels(victim, undefined), reason: "queue_full" });
  }

  private reject(engineName: string, refusal: Refusal): OrchError {
    this.metrics.tasksRejected.inc({ engine: engineName, reason: refusal.reason });
    this.logger.info(
      { event: "rejected", engine: engineName, reason: refusal.reason, code: refusal.error.detail.code },
      `task refused at admission: ${refusal.error.message}`,
    );
    return refusal.error;
  }
}
