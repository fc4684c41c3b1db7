import { Engine } from "../../contracts/gen/llama_orch/v1/common.js";
import { PoolQueue } from "../queue/pool-queue.js";
import type { Task } from "../tasks/task.js";

/** What core keeps per pool beyond its replicas: the queue and its measured drain rate. */
export class PoolState {
  readonly queue: PoolQueue<Task>;
  /** Pending coalesced "queue moved" report, so movement frames go out at a bounded rate. */
  frameTimer: NodeJS.Timeout | undefined;
  /** An operator drained the pool: it admits nothing until a reload succeeds. */
  draining = false;
  drainDeadlineAt: number | undefined;
  drainTimer: NodeJS.Timeout | undefined;
  reloadState: "idle" | "reloading" | "rolling_back" = "idle";
  lastReloadError = "";
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
}
