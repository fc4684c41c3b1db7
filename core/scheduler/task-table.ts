import type { Task, TaskAttempt } from "../tasks/task.js";

export interface RetentionLimits {
  /** How long a finished task stays readable. */
  taskRetentionMs: number;
  /** Tasks kept at most, finished and unfinished; the oldest finished ones go first. */
  maxRetainedTasks: number;
}

/**
 * Every task core remembers, by id, and the index of those running now. A
 * task starts, stops and finishes running through here, so the index and the
 * tasks' own states cannot drift apart.
 *
 * A finished task stays readable for the retention period, and the oldest
 * finished ones go first when there are too many. Nothing holds a finished
 * task but the two maps here (no timer per task, whose closure would keep it
 * alive past its eviction): the owner calls sweep() on one interval, and
 * expiry is also checked on every read, so an expired task is never seen
 * between sweeps.
 */
export class TaskTable {
  private readonly byId = new Map<string, Task>();
  private readonly runningNow = new Set<Task>();
  /** Finished tasks in the order they finished, which is the order they expire and are evicted in. */
  private readonly finishedInOrder = new Map<string, Task>();

  constructor(
    private readonly limits: RetentionLimits,
    private readonly clock: () => number = Date.now,
  ) {}

  get(taskId: string): Task | undefined {
    const task = this.byId.get(taskId);
    if (task && this.expired(task, this.clock())) {
      this.forget(task);
      return undefined;
    }
    return task;
  }

  has(taskId: string): boolean {
    return this.get(taskId) !== undefined;
  }

  /** Remembers an admitted task, making room by forgetting the oldest finished ones. */
  add(task: Task): void {
    this.get(task.id); // an expired task of the same id goes first, so its eviction cannot take this one
    this.byId.set(task.id, task);
    this.evictOverCount();
  }

  get running(): ReadonlySet<Task> {
    return this.runningNow;
  }

  /** Finished tasks kept now. */
  get finishedCount(): number {
    return this.finishedInOrder.size;
  }

  runningIn(poolId: string): number {
    let n = 0;
    for (const t of this.runningNow) if (t.poolId === poolId) n++;
    return n;
  }

  /** Every task kept, finished ones included until retention lets them go. */
  retained(): IterableIterator<Task> {
    this.sweep(this.clock());
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

  /** Finishes the task (its slot goes back); sweep() forgets it once the retention period is over. */
  finish(task: Task, now: number): void {
    task.finish(now);
    this.runningNow.delete(task);
    if (this.byId.get(task.id) !== task) return;
    this.finishedInOrder.set(task.id, task);
    this.evictOverCount();
  }

  /** Forgets the finished tasks whose retention is over; they are the oldest, so the walk stops at the first that is not. */
  sweep(now: number): void {
    for (const task of this.finishedInOrder.values()) {
      if (!this.expired(task, now)) break;
      this.forget(task);
    }
  }

  private expired(task: Task, now: number): boolean {
    return task.state === "finished" && now - task.finishedAt >= this.limits.taskRetentionMs;
  }

  /** Over the bound, the tasks that finished first go; unfinished ones stay (their queues bound them). */
  private evictOverCount(): void {
    for (const task of this.finishedInOrder.values()) {
      if (this.byId.size <= this.limits.maxRetainedTasks) break;
      this.forget(task);
    }
  }

  private forget(task: Task): void {
    this.finishedInOrder.delete(task.id);
    if (this.byId.get(task.id) === task) this.byId.delete(task.id);
  }
}
