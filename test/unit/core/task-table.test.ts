import type { ClientReadableStream } from "@grpc/grpc-js";
import { ROOT_CONTEXT } from "@opentelemetry/api";
import test from "ava";
import { CreateTaskRequest } from "../../../contracts/gen/llama_orch/v1/task.js";
import type { Replica } from "../../../core/registry/replica.js";
import { SlotLease } from "../../../core/registry/slot-lease.js";
import { TaskTable } from "../../../core/scheduler/task-table.js";
import { TimerSet } from "../../../core/scheduler/timer-set.js";
import { Task, type TaskAttempt } from "../../../core/tasks/task.js";

function task(id: string, poolId = "p"): Task {
  return new Task(CreateTaskRequest.fromPartial({ taskId: id, sessionId: "s" }), poolId, "", {
    predictedDurationMs: undefined,
    span: undefined,
    traceContext: ROOT_CONTEXT,
  });
}

/** The table only hands the attempt to the task; the replica and call are never used. */
function attempt(): TaskAttempt {
  return { lease: new SlotLease(() => {}), replica: { id: "r1" } as Replica, call: {} as ClientReadableStream<unknown>, kvWarm: false };
}

function table(limits = { taskRetentionMs: 60_000, maxRetainedTasks: 100 }): { tasks: TaskTable; timers: TimerSet } {
  const timers = new TimerSet();
  return { tasks: new TaskTable(timers, limits), timers };
}

test("the running index follows each task's start, abandoned attempt and finish", (t) => {
  const { tasks, timers } = table();
  t.teardown(() => timers.clearAll());
  const a = task("a");
  const b = task("b", "q");
  tasks.add(a);
  tasks.add(b);
  tasks.start(a, attempt(), 1);
  tasks.start(b, attempt(), 1);
  t.deepEqual([...tasks.running], [a, b]);
  t.is(tasks.runningIn("p"), 1);
  tasks.abandonAttempt(a);
  t.deepEqual([...tasks.running], [b]);
  t.deepEqual(tasks.unfinished(), [a, b]);
  t.deepEqual(tasks.unfinished("q"), [b]);
  tasks.finish(b, 2);
  t.deepEqual([...tasks.running], []);
  t.deepEqual(tasks.unfinished(), [a]);
  t.is(tasks.get("b"), b, "a finished task stays readable");
});

test("a finished task is forgotten after the retention period", async (t) => {
  const { tasks, timers } = table({ taskRetentionMs: 20, maxRetainedTasks: 100 });
  t.teardown(() => timers.clearAll());
  const a = task("a");
  tasks.add(a);
  tasks.finish(a, 1);
  t.true(tasks.has("a"));
  await new Promise((r) => setTimeout(r, 50));
  t.false(tasks.has("a"));
});

test("over capacity, the oldest finished tasks go first and unfinished ones stay", (t) => {
  const { tasks, timers } = table({ taskRetentionMs: 60_000, maxRetainedTasks: 2 });
  t.teardown(() => timers.clearAll());
  const [a, b, c] = [task("a"), task("b"), task("c")];
  tasks.add(a);
  tasks.add(b);
  tasks.finish(b, 1);
  tasks.add(c);
  t.deepEqual(
    ["a", "b", "c"].map((id) => tasks.has(id)),
    [true, false, true],
  );
});
