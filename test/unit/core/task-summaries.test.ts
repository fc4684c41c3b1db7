import type { ClientReadableStream } from "@grpc/grpc-js";
import { ROOT_CONTEXT } from "@opentelemetry/api";
import test from "ava";
import { Engine, Priority } from "../../../contracts/gen/llama_orch/v1/common.js";
import { CreateTaskRequest, TaskState } from "../../../contracts/gen/llama_orch/v1/task.js";
import type { Replica } from "../../../core/registry/replica.js";
import { SlotLease } from "../../../core/registry/slot-lease.js";
import { PoolState } from "../../../core/scheduler/pool-state.js";
import { taskListingKey, taskSummaryView } from "../../../core/scheduler/task-summaries.js";
import { Task } from "../../../core/tasks/task.js";

function task(id: string, priority = Priority.PRIORITY_INTERACTIVE): Task {
  return new Task(CreateTaskRequest.fromPartial({ taskId: id, sessionId: "s", priority }), "p", "", {
    predictedDurationMs: undefined,
    span: undefined,
    traceContext: ROOT_CONTEXT,
  });
}

test("queued tasks say their queue position, running ones their replica and tokens so far; finished ones are left out", (t) => {
  const pool = new PoolState("p", Engine.ENGINE_LLAMACPP, 8);
  const [run, batch, inter, done] = [task("run"), task("batch", Priority.PRIORITY_BATCH), task("inter"), task("done")];
  pool.queue.enqueue(batch.id, Priority.PRIORITY_BATCH, batch);
  pool.queue.enqueue(inter.id, Priority.PRIORITY_INTERACTIVE, inter);
  run.markRunning(
    { lease: new SlotLease(() => {}), replica: { id: "r7" } as Replica, call: {} as ClientReadableStream<unknown>, kvWarm: false },
    1,
  );
  run.recordTokens(3, 2);
  done.finish(3);
  const all = taskSummaryView([run, batch, inter, done], [pool], TaskState.TASK_STATE_UNSPECIFIED);
  const byId = new Map(all.map((s) => [s.taskId, s]));
  t.deepEqual(all.map((s) => s.taskId).sort(), ["batch", "inter", "run"]);
  t.like(byId.get("run"), { state: TaskState.TASK_STATE_RUNNING, replicaId: "r7", tokensOut: 3, queuePosition: undefined, poolId: "p" });
  t.like(byId.get("inter"), {
    state: TaskState.TASK_STATE_QUEUED,
    queuePosition: 0,
    replicaId: "",
    priority: Priority.PRIORITY_INTERACTIVE,
  });
  t.like(byId.get("batch"), { state: TaskState.TASK_STATE_QUEUED, queuePosition: 1, priority: Priority.PRIORITY_BATCH });
  t.deepEqual(
    taskSummaryView([run, batch, inter, done], [pool], TaskState.TASK_STATE_RUNNING).map((s) => s.taskId),
    ["run"],
  );
  t.deepEqual(all.map(taskListingKey), [...all.map(taskListingKey)].sort(), "in listing order");
});

test("the listing order is admission time, then id, and the key sorts that way as a string", (t) => {
  const at = (admittedMs: number, taskId: string) => taskListingKey({ taskId, admittedMs } as never);
  t.true(at(999, "z") < at(1000, "a"));
  t.true(at(1000, "a") < at(1000, "b"));
  t.true(at(1_700_000_000_000, "a") < at(10_000_000_000_000, "a"));
});
