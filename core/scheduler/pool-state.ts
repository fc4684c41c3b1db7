import { Engine } from "../../contracts/gen/llama_orch/v1/common.js";
import { PoolQueue } from "../queue/pool-queue.js";
import type { Task } from "../tasks/task.js";

/** What core keeps per pool beyond its replicas: the queue and measured service time. */
export class PoolState {
  readonly queue: PoolQueue<Task>;
  /** Exponentially weighted mean of dispatch-to-end time of completed tasks, ms. */
  private serviceMsEwma: number | undefined;

  constructor(
    readonly id: string,
    readonly engine: Engine,
    queueCapacity: number,
  ) {
    this.queue = new PoolQueue<Task>(queueCapacity);
  }

  recordServiceTime(ms: number): void {
    this.serviceMsEwma = this.serviceMsEwma === undefined ? ms : 0.8 * this.serviceMsEwma + 0.2 * ms;
  }

  /**
   * Expected wait before the task at `position` starts: zero while a slot is
   * free for it, else one measured service time per full round of slots ahead.
   * Without measurements yet the estimate is optimistic (0).
   */
  predictStartMs(position: number, freeSlots: number, totalSlots: number): number {
    if (position < freeSlots) return 0;
    if (totalSlots <= 0) return Math.round(this.serviceMsEwma ?? 0);
    const rounds = Math.ceil((position - freeSlots + 1) / totalSlots);
    return Math.round(rounds * (this.serviceMsEwma ?? 0));
  }
}
