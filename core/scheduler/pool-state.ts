import type { Engine } from "../../contracts/gen/llama_orch/v1/common.js";
import { PoolQueue } from "../queue/pool-queue.js";
import type { Task } from "../tasks/task.js";

export type ReloadState = "idle" | "reloading" | "rolling_back";

/**
 * What core keeps per pool beyond its replicas: the queue, its measured drain
 * rate, and the operator's drain and reload. Drain and reload change only
 * through the methods below.
 */
export class PoolState {
  readonly queue: PoolQueue<Task>;
  /** An operator drained the pool: it admits nothing until a reload succeeds. */
  private isDraining = false;
  private drainDeadline: number | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private reload: ReloadState = "idle";
  private reloadError = "";
  private lastCompletionAt: number | undefined;
  /** Exponentially weighted mean time between completions, ms: how fast the queue drains. */
  private completionIntervalEwma: number | undefined;

  constructor(
    readonly id: string,
    readonly engine: Engine,
    queueCapacity: number,
  ) {
    this.queue = new PoolQueue<Task>(queueCapacity);
  }

  get draining(): boolean {
    return this.isDraining;
  }

  /** When a drain cancels what is left (epoch ms); undefined when not draining. */
  get drainDeadlineAt(): number | undefined {
    return this.drainDeadline;
  }

  get reloadState(): ReloadState {
    return this.reload;
  }

  get lastReloadError(): string {
    return this.reloadError;
  }

  /** Not draining and not mid-reload: its replicas may count as ready. */
  get usable(): boolean {
    return !this.isDraining && this.reload === "idle";
  }

  /** Starts (or restarts) a drain; `deadlinePassed` runs once the deadline is reached, unless a reload ends the drain first. */
  startDrain(deadlineMs: number, now: number, deadlinePassed: () => void): void {
    this.isDraining = true;
    this.drainDeadline = now + deadlineMs;
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = setTimeout(() => {
      this.drainTimer = undefined;
      deadlinePassed();
    }, deadlineMs);
    this.drainTimer.unref();
  }

  /** Reload bookkeeping; a successful reload also ends a drain. */
  setReloadState(state: ReloadState, outcome?: { error?: string; succeeded?: boolean }): void {
    this.reload = state;
    if (outcome?.error !== undefined) this.reloadError = outcome.error;
    if (outcome?.succeeded) {
      this.reloadError = "";
      this.isDraining = false;
      this.drainDeadline = undefined;
      this.stopDrainTimer();
    }
  }

  stopDrainTimer(): void {
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
  }

  recordCompletion(at: number): void {
    if (this.lastCompletionAt !== undefined) {
      const gap = at - this.lastCompletionAt;
      this.completionIntervalEwma = this.completionIntervalEwma === undefined ? gap : 0.8 * this.completionIntervalEwma + 0.2 * gap;
    }
    this.lastCompletionAt = at;
  }

  completionIntervalMs(): number | undefined {
    return this.completionIntervalEwma;
  }

  /** Queued tasks in dispatch order. */
  queuedTasks(): Task[] {
    return [...this.queue.entries()].map(([, t]) => t);
  }
}
