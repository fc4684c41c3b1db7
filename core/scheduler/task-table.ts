import type { Task, TaskAttempt } from "../tasks/task.js";
import type { TimerSet } from "./timer-set.js";

/**
 * Every task core remembers, by id, and the index of those running now. A
 * task starts, stops and finishes running through here, so the index and the
 * tasks' own states cannot drift apart; a finished task stays readable for
 * the retention period, and the oldest finished ones go first when there are
 * too many.
 */
export class TaskTable {
  private readonly byId = new Map<string, Task>();
  private readonly runningNow = new Set<Task>();

  constructor(
    private readonly timers: TimerSet,
    private readonly limits: { taskRetentionMs: number; maxRetainedTasks: number },
  ) {}

  get(taskId: string): Task | undefined {
    return this.byId.get(taskId);
  }

  has(taskId: string): boolean {
    return this.byId.has(taskId);
  }

  /** Remembers an admitted task, making room by forgetting the oldest finished ones. */
  add(task: Task): void {
    this.byId.set(task.id, task);
    this.evictIfOverCapacity();
  }

  get running(): ReadonlySet<Task> {
    return this.runningNow;
  }

  runningIn(poolId: string): number {
    let n = 0;
    for (const t of this.runningNow) if (t.poolId === poolId) n++;
    return n;
  }

  /** Every task kept, finished ones included until retention lets them go. */
  retained(): IterableIterator<Task> {
    return this.byId.values();
  }

  /** Queued or running tasks, in admission order; of one pool when given. */
  unfinished(poolId?: string): Task[] {
    return [...this.byId.values()].filter((t) => t.state !== "finished" && (poolId === undefined || t.poolId === poolId));
  }

  start(task: Task, attempt: TaskAttempt, now: number): void {
    task.markRunning(attempt, now);
    this.runningNow.add(task);
  }

  abandonAttempt(task: Task): void {
    task.abandonAttempt();
    this.runningNow.delete(task);
  }

  /** Finishes the task (its slot goes back) and forgets it once the retention period is over. */
  finish(task: Task, now: number): void {
    task.finish(now);
    this.runningNow.delete(task);
    this.timers.later(this.limits.taskRetentionMs, () => this.byId.delete(task.id), true);
  }

  private evictIfOverCapacity(): void {
    const max = this.limits.maxRetainedTasks;
    if (this.byId.size <= max) return;
    for (const [id, t] of this.byId) {
      if (this.byId.size <= max) break;
      if (t.state === "finished") this.byId.delete(id);
    }
  }
}
