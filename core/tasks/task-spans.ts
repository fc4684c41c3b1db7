import type { Context, Span } from "@opentelemetry/api";
import { SPAN_ATTRIBUTES, startSpan } from "../../contracts/runtime/trace-context.js";

/**
 * The spans of a task's phases under its own span: each wait in a queue
 * (a retried task waits again) and each run on a replica (dispatch to the
 * end of its Submit stream). At most one of each is open; a phase's span
 * ends where the phase does, and whatever is open ends with the task.
 */
export class TaskSpans {
  private waiting: Span | undefined;
  private running: Span | undefined;

  constructor(
    /** The task span's context. */
    private readonly parent: Context,
    private readonly taskId: string,
  ) {}

  /** The task joined (or went back to) a queue. */
  queued(poolId: string): void {
    this.waiting?.end();
    this.waiting = startSpan("llama_orch.queue_wait", this.parent, {
      [SPAN_ATTRIBUTES.taskId]: this.taskId,
      [SPAN_ATTRIBUTES.poolId]: poolId,
    }).span;
  }

  /** The wait is over and a run on `replicaId` starts: the context its Submit call carries to the sidecar. */
  dispatched(poolId: string, replicaId: string, attempt: number): Context {
    this.waiting?.end();
    this.waiting = undefined;
    this.running?.end();
    const { span, ctx } = startSpan("llama_orch.dispatch", this.parent, {
      [SPAN_ATTRIBUTES.taskId]: this.taskId,
      [SPAN_ATTRIBUTES.poolId]: poolId,
      [SPAN_ATTRIBUTES.replicaId]: replicaId,
      "llama_orch.attempt": attempt,
    });
    this.running = span;
    return ctx;
  }

  /** The run ended (finished, or abandoned before output): what it produced. */
  runEnded(tokensOut: number): void {
    this.running?.setAttribute(SPAN_ATTRIBUTES.tokensOut, tokensOut);
    this.running?.end();
    this.running = undefined;
  }

  /** The task ended: a wait still open (a task cancelled in its queue) ends with it. */
  finished(): void {
    this.waiting?.end();
    this.waiting = undefined;
  }
}
