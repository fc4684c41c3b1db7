import { TaskState, type TaskSummary } from "../../contracts/gen/llama_orch/v1/task.js";
import type { Task } from "../tasks/task.js";
import type { PoolState } from "./pool-state.js";

const STATES: Record<Task["state"], TaskState | undefined> = {
  queued: TaskState.TASK_STATE_QUEUED,
  running: TaskState.TASK_STATE_RUNNING,
  finished: undefined,
};

/**
 * ListTasks' view of the unfinished tasks (of one state, unless `state` is
 * unspecified): a copy of where each waits or runs and how far it got, in
 * listing order. Queue positions come from one walk over each pool's queue,
 * not one per task.
 */
export function taskSummaryView(tasks: Iterable<Task>, pools: Iterable<PoolState>, state: TaskState): TaskSummary[] {
  const positions = new Map<string, number>();
  for (const pool of pools) pool.queuedTasks().forEach((t, i) => positions.set(t.id, i));
  const out: TaskSummary[] = [];
  for (const task of tasks) {
    const taskState = STATES[task.state];
    if (taskState === undefined || (state !== TaskState.TASK_STATE_UNSPECIFIED && state !== taskState)) continue;
    const running = taskState === TaskState.TASK_STATE_RUNNING;
    out.push({
      taskId: task.id,
      state: taskState,
      poolId: task.poolId,
      priority: task.request.priority,
      queuePosition: running ? undefined : positions.get(task.id),
      replicaId: running ? (task.replica?.id ?? "") : "",
      tokensOut: task.tokensOut,
      admittedMs: task.admittedAt,
    });
  }
  const keys = new Map(out.map((t) => [t, taskListingKey(t)]));
  return out.sort((a, b) => (keys.get(a)! < keys.get(b)! ? -1 : 1));
}

/** The order ListTasks pages in: admission time, then id; as a string that sorts the same way. */
export function taskListingKey(t: TaskSummary): string {
  return `${String(t.admittedMs).padStart(16, "0")}:${t.taskId}`;
}
