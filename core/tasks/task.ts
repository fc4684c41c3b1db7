import type { ClientReadableStream } from "@grpc/grpc-js";
import type { Context, Span } from "@opentelemetry/api";
import type { CreateTaskRequest, TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";
import type { Replica } from "../registry/replica.js";
import type { SlotLease } from "../registry/slot-lease.js";
import { TaskEventLog } from "./task-event-log.js";
import { TaskSpans } from "./task-spans.js";

export type TaskState = "queued" | "running" | "finished";

/** The last event of every task's log. */
export type TerminalEvent = Extract<TaskEvent["kind"], { $case: "end" } | { $case: "error" }>;

/** One run of a task on a replica: the slot it holds, and the Submit call feeding its log. */
export interface TaskAttempt {
  lease: SlotLease;
  replica: Replica;
  call: ClientReadableStream<unknown>;
  /** Whether the replica holds the session's KV cache. */
  kvWarm: boolean;
}

/** What admission knew about a task before it was queued. */
export interface TaskAdmission {
  /** Predicted dispatch-to-end time on its pool, for queue predictions; undefined until measured. */
  predictedDurationMs: number | undefined;
  /** The task's span, and the context that carries it to the sidecar. */
  span: Span | undefined;
  traceContext: Context;
  /** When it was admitted, epoch ms; a task recovered from the journal keeps its first admission's. */
  admittedAt?: number;
  /** Recovered after a restart from a replica it was dispatched to: a client may have seen output of that run. */
  mayHaveOutput?: boolean;
  /** The identity of the client key that submitted it, when core checks keys (see task-access.ts). */
  owner?: string;
}

/**
 * One admitted task: queued -> running (-> queued again when an attempt never
 * started) -> finished. Its state changes only through the methods below,
 * which refuse a change its state does not allow; the scheduler calls them.
 */
export class Task {
  readonly log = new TaskEventLog();
  readonly admittedAt: number;
  readonly predictedDurationMs: number | undefined;
  readonly span: Span | undefined;
  readonly traceContext: Context;
  /** Who submitted it (a key's identity); undefined when core checks no keys. */
  readonly owner: string | undefined;
  /** Its queue waits and runs, as spans under its own. */
  private readonly spans: TaskSpans;
  private current: TaskState = "queued";
  /** Set while running; its lease is released in stopRunning, where running ends. */
  private attempt: TaskAttempt | undefined;
  /** The replica of the current or last attempt, kept after finish for the reports about it. */
  private lastReplica: Replica | undefined;
  private attemptCount = 0;
  private tokensOutCount = 0;
  /** Embedding vectors or rerank scores delivered (those workloads produce no tokens). */
  private resultsOutCount = 0;
  private tokensInCount = 0;
  private firstDispatchAt = 0;
  private firstTokenTime = 0;
  private finishTime = 0;
  /** Last dispatch or token batch: the idle watchdog's clock. */
  private lastProgressTime = 0;
  /** The queue position the client was last told, so movement frames go out only on change. */
  private toldPosition: number | undefined;
  private toldProgress = "";
  private readerCount = 0;
  /** Cancels the task when its last reader has been gone for the grace period. */
  private graceTimer: NodeJS.Timeout | undefined;
  private readonly ranBeforeRestart: boolean;

  constructor(
    readonly request: CreateTaskRequest,
    /** The pool whose queue holds it; changes only when its pool lost every replica. */
    private pool: string,
    /** The admitting request's X-Correlation-Id, for every later log line. */
    readonly correlationId: string,
    admission: TaskAdmission,
  ) {
    this.predictedDurationMs = admission.predictedDurationMs;
    this.span = admission.span;
    this.traceContext = admission.traceContext;
    this.admittedAt = admission.admittedAt ?? Date.now();
    this.ranBeforeRestart = admission.mayHaveOutput ?? false;
    this.owner = admission.owner;
    this.spans = new TaskSpans(admission.traceContext, request.taskId);
    this.spans.queued(pool);
  }

  get id(): string {
    return this.request.taskId;
  }

  get state(): TaskState {
    return this.current;
  }

  get poolId(): string {
    return this.pool;
  }

  get replica(): Replica | undefined {
    return this.lastReplica;
  }

  /** The Submit call of the running attempt. */
  get call(): ClientReadableStream<unknown> | undefined {
    return this.attempt?.call;
  }

  get kvWarm(): boolean {
    return this.attempt?.kvWarm ?? false;
  }

  /** Dispatch attempts; work that never started on a replica may be retried. */
  get attempts(): number {
    return this.attemptCount;
  }

  get tokensOut(): number {
    return this.tokensOutCount;
  }

  /** Whether a client may already have seen output, after which the task must not run again elsewhere. */
  get hasOutput(): boolean {
    return this.tokensOutCount > 0 || this.resultsOutCount > 0 || this.ranBeforeRestart;
  }

  /** Embedding vectors or rerank scores delivered so far. */
  get resultsOut(): number {
    return this.resultsOutCount;
  }

  get tokensIn(): number {
    return this.tokensInCount;
  }

  /** The first dispatch (0 before it): decode time counts from here, across retries. */
  get dispatchedAt(): number {
    return this.firstDispatchAt;
  }

  get firstTokenAt(): number {
    return this.firstTokenTime;
  }

  get finishedAt(): number {
    return this.finishTime;
  }

  get lastProgressAt(): number {
    return this.lastProgressTime;
  }

  get reportedPosition(): number | undefined {
    return this.toldPosition;
  }

  get readers(): number {
    return this.readerCount;
  }

  /** Ends the queue wait's span and starts the next run's: the trace context its Submit call carries to the sidecar. */
  traceDispatch(replicaId: string): Context {
    this.expect("queued", "be dispatched");
    return this.spans.dispatched(this.pool, replicaId, this.attemptCount + 1);
  }

  /** Dispatched: the task holds `attempt.lease` until the attempt is abandoned or the task finishes. */
  markRunning(attempt: TaskAttempt, now: number): void {
    this.expect("queued", "start running");
    this.current = "running";
    this.attempt = attempt;
    this.lastReplica = attempt.replica;
    this.attemptCount++;
    this.firstDispatchAt ||= now;
    this.lastProgressTime = now;
  }

  /** The replica counted the prompt. */
  recordPromptTokens(n: number): void {
    this.expect("running", "count prompt tokens");
    this.tokensInCount = n;
  }

  /** A batch of n generated tokens arrived; true when it holds the task's first token. */
  recordTokens(n: number, now: number): boolean {
    this.expect("running", "count tokens");
    const first = this.firstTokenTime === 0;
    if (first) this.firstTokenTime = now;
    this.lastProgressTime = now;
    this.tokensOutCount += n;
    return first;
  }

  /** One embedding vector or rerank score arrived; true when it is the task's first output. */
  recordResult(now: number): boolean {
    this.expect("running", "count results");
    const first = this.firstTokenTime === 0;
    if (first) this.firstTokenTime = now;
    this.lastProgressTime = now;
    this.resultsOutCount++;
    return first;
  }

  /**
   * Its replica is loading the model for it (one that had unloaded its model
   * after idling): the silence is the load's, not the engine's, so the idle
   * timeout counts from now.
   */
  noteModelLoading(now: number): void {
    this.expect("running", "wait for a model load");
    this.lastProgressTime = now;
  }

  /** The attempt ended before producing anything: its slot goes back, and the task is queued again. */
  abandonAttempt(): void {
    this.expect("running", "abandon an attempt");
    this.stopRunning();
    this.lastReplica = undefined;
    this.current = "queued";
    this.spans.queued(this.pool);
  }

  /** Its pool lost every replica and another pool's queue took it. */
  moveToPool(poolId: string): void {
    this.expect("queued", "move to another pool");
    this.pool = poolId;
  }

  /** Notes what the last periodic metrics frame said; false when the next would say the same. */
  noteProgress(signature: string): boolean {
    if (this.toldProgress === signature) return false;
    this.toldProgress = signature;
    return true;
  }

  /** Notes the queue position the client is told; false when it was told that one already. */
  notePosition(position: number): boolean {
    if (this.toldPosition === position) return false;
    this.toldPosition = position;
    return true;
  }

  /** The single end of a task: a running one gives its slot back here. */
  finish(now: number): void {
    if (this.current === "finished") throw new Error(`task ${this.id} cannot finish twice`);
    if (this.current === "running") this.stopRunning();
    this.current = "finished";
    this.finishTime = now;
    this.spans.finished();
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
  }

  /** A client started reading the task's stream; a pending disconnect cancel is called off. */
  readerJoined(): void {
    this.readerCount++;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
  }

  /**
   * A client stopped reading before the stream ended. When it was the last,
   * `abandoned` runs after `graceMs` (at once for 0) unless a reader comes back
   * or the task finishes first.
   */
  readerLeft(graceMs: number, abandoned: () => void): void {
    this.readerCount = Math.max(0, this.readerCount - 1);
    if (this.readerCount > 0 || this.current === "finished" || this.graceTimer) return;
    const expire = () => {
      this.graceTimer = undefined;
      if (this.readerCount === 0 && this.current !== "finished") abandoned();
    };
    if (graceMs === 0) expire();
    else this.graceTimer = setTimeout(expire, graceMs);
  }

  /** Where running ends, whichever way: the attempt's slot goes back. */
  private stopRunning(): void {
    this.attempt!.lease.release();
    this.attempt = undefined;
    this.spans.runEnded(this.tokensOutCount);
  }

  private expect(state: TaskState, change: string): void {
    if (this.current !== state) throw new Error(`task ${this.id} cannot ${change} while ${this.current}`);
  }
}
