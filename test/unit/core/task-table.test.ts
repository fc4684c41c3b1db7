import type { ClientReadableStream } from "@grpc/grpc-js";
import { ROOT_CONTEXT } from "@opentelemetry/api";
import test from "ava";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { CreateTaskRequest } from "../../../contracts/gen/llama_orch/v1/task.js";
import type { Replica } from "../../../core/registry/replica.js";
import { SlotLease } from "../../../core/registry/slot-lease.js";
import { TaskTable } from "../../../core/scheduler/task-table.js";
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

/** A table on a clock the test moves. */
function table(limits = { taskRetentionMs: 60_000, maxRetainedTasks: 100 }): { tasks: TaskTable; clock: { now: number } } {
  const clock = { now: 1_000 };
  return { tasks: new TaskTable(limits, () => clock.now), clock };
}

test("the running index follows each task's start, abandoned attempt and finish", (t) => {
  const { tasks } = table();
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
  tasks.finish(b, 1_000);
  t.deepEqual([...tasks.running], []);
  t.deepEqual(tasks.unfinished(), [a]);
  t.is(tasks.get("b"), b, "a finished task stays readable");
});

test("a finished task is forgotten once the retention period is over, by a read or by the sweep", (t) => {
  const { tasks, clock } = table({ taskRetentionMs: 20, maxRetainedTasks: 100 });
  const [a, b, c] = [task("a"), task("b"), task("c")];
  for (const x of [a, b, c]) tasks.add(x);
  tasks.finish(a, 1_000);
  tasks.finish(b, 1_010);
  clock.now = 1_019;
  t.true(tasks.has("a"));
  clock.now = 1_020;
  t.false(tasks.has("a"), "expired between sweeps, and a read does not see it");
  tasks.sweep(1_030);
  t.is(tasks.finishedCount, 0);
  t.deepEqual([...tasks.retained()], [c], "the unfinished task stays, however old");
});

test("an id admitted again after its first task expired is the new task's, and the old one's expiry cannot take it", (t) => {
  const { tasks, clock } = table({ taskRetentionMs: 20, maxRetainedTasks: 100 });
  const old = task("a");
  tasks.add(old);
  tasks.finish(old, 1_000);
  clock.now = 1_050;
  const again = task("a");
  tasks.add(again);
  tasks.sweep(1_050);
  t.is(tasks.get("a"), again);
});

test("over capacity, the tasks that finished first go first and unfinished ones stay", (t) => {
  const { tasks } = table({ taskRetentionMs: 60_000, maxRetainedTasks: 3 });
  const [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map((id) => task(id));
  for (const x of [a, b, c]) tasks.add(x!);
  tasks.finish(c!, 1_000);
  tasks.finish(b!, 1_001);
  tasks.add(d!);
  t.deepEqual(
    ["a", "b", "c", "d"].map((id) => tasks.has(id)),
    [true, true, false, true],
    "c finished before b",
  );
  tasks.add(e!);
  t.deepEqual(
    ["a", "b", "d", "e"].map((id) => tasks.has(id)),
    [true, false, true, true],
  );
  tasks.finish(a!, 1_002);
  tasks.finish(d!, 1_003);
  tasks.finish(e!, 1_004);
  t.is(tasks.finishedCount, 3);
});

test("an evicted task is garbage: nothing in the table keeps it alive", async (t) => {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const { tasks } = table({ taskRetentionMs: 60_000, maxRetainedTasks: 10 });
  const refs: WeakRef<Task>[] = [];
  for (let i = 0; i < 1_000; i++) {
    const x = task(`t${i}`);
    refs.push(new WeakRef(x));
    tasks.add(x);
    tasks.finish(x, 1_000 + i);
  }
  await new Promise((r) => setImmediate(r));
  gc();
  t.is(refs.filter((r) => r.deref() !== undefined).length, 10, "only the ten the bound keeps");
  t.is(tasks.finishedCount, 10);
});
