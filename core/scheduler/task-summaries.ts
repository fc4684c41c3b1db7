import { errorCodes, stopReasonName } from "../../contracts/enums.js";
import { TaskState, type TaskSummary } from "../../contracts/gen/llama_orch/v1/task.js";
import type { Task } from "../tasks/task.js";
import type { PoolState } from "./pool-state.js";

const STATES: Record<Task["state"], TaskState> = {
  queued: TaskState.TASK_STATE_QUEUED,
  running: TaskState.TASK_STATE_RUNNING,
  finished: TaskState.TASK_STATE_FINISHED,
};

/**
 * ListTasks' view of the tasks in one state (unspecified: queued and
 * running): a copy of where each waits or runs, how far it got and, once
 * finished, how it ended, in listing order; only the tasks `visible` lets
 * the caller see. Queue positions come from one
 * walk over each pool's queue, not one per task.
 */
export function taskSummaryView(
  tasks: Iterable<Task>,
  pools: Iterable<PoolState>,
  state: TaskState,
  visible: (task: Task) => boolean = () => true,
): TaskSummary[] {
  const positions = new Map<string, number>();
  for (const pool of pools) pool.queuedTasks().forEach((t, i) => positions.set(t.id, i));
  const out: TaskSummary[] = [];
  for (const task of tasks) {
    const taskState = STATES[task.state];
    const wanted = state === TaskState.TASK_STATE_UNSPECIFIED ? taskState !== TaskState.TASK_STATE_FINISHED : state === taskState;
    if (wanted && visible(task)) out.push(summaryOf(task, taskState, positions.get(task.id)));
  }
  const keys = new Map(out.map((t) => [t, taskListingKey(t)]));
  return out.sort((a, b) => (keys.get(a)! < keys.get(b)! ? -1 : 1));
}

function summaryOf(task: Task, state: TaskState, queuePosition: number | undefined): TaskSummary {
  const running = state === TaskState.TASK_STATE_RUNNING;
  const finished = state === TaskState.TASK_STATE_FINISHED;
  const last = finished ? task.log.events.at(-1)?.kind : undefined;
  return {
    taskId: task.id,
    state,
    poolId: task.poolId,
    priority: task.request.priority,
    queuePosition: state === TaskState.TASK_STATE_QUEUED ? queuePosition : undefined,
    replicaId: running ? (task.replica?.id ?? "") : "",
    tokensOut: task.tokensOut,
    tokensIn: task.tokensIn,
    admittedMs: task.admittedAt,
    modelRef: task.request.modelRef,
    firstTokenMs: task.firstTokenAt > 0 ? task.firstTokenAt - task.admittedAt : undefined,
    dispatchedMs: task.dispatchedAt > 0 ? task.dispatchedAt : undefined,
    finishedMs: finished ? task.finishedAt : undefined,
    outcome:
      last?.$case === "end" ? (stopReasonName(last.end.stopReason) ?? "") : last?.$case === "error" ? errorCodes.name(last.error.code) : "",
    traceArtifactId: last?.$case === "end" ? last.end.traceArtifactId : last?.$case === "error" ? last.error.traceArtifactId : "",
  };
}

/**
 * The order ListTasks pages in, as a string that sorts that way: admission
 * time then id for queued and running tasks; for finished ones newest first
 * (the time is counted down from the largest safe integer).
 */
export function taskListingKey(t: TaskSummary): string {
  const time = t.state === TaskState.TASK_STATE_FINISHED ? Number.MAX_SAFE_INTEGER - (t.finishedMs ?? 0) : t.admittedMs;
  return `${String(time).padStart(16, "0")}:${t.taskId}`;
}
