import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { Principal } from "../../contracts/runtime/auth/roles.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import type { Task } from "../tasks/task.js";

// A task belongs to the key that submitted it: another client key can neither
// read its stream, nor cancel it, nor see it listed. Admin keys (and the
// one-key shortcut, which holds every role) see every task; without keys there
// is no owner and everyone sees everything.

/** Whether `caller` may stream, cancel or list `task`. */
export function mayTouchTask(task: Pick<Task, "owner">, caller: Principal | undefined): boolean {
  if (task.owner === undefined || caller === undefined) return true;
  return caller.roles.has("admin") || caller.identity === task.owner;
}

/** The task if the caller may touch it; otherwise NOT_FOUND in the words an unknown id gets, so ids of others are not confirmed. */
export function touchableTask(task: Task | undefined, taskId: string, caller: Principal | undefined): Task {
  if (!task || !mayTouchTask(task, caller)) throw OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `unknown task ${taskId}`);
  return task;
}
