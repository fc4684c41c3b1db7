import type { QueueFullPolicy } from "./queue-policy.js";

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
  /** After a restart, how long a task the journal says was running waits for its replica to hand it back. */
  reclaimGraceMs: number;
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
  reclaimGraceMs: 10_000,
};
