import test from "ava";
import type { Replica } from "../../../core/registry/replica.js";
import { TaskRecovery } from "../../../core/scheduler/task-recovery.js";
import { TaskTable } from "../../../core/scheduler/task-table.js";
import { quietLogger } from "../../support/log-capture.js";
import { unstartedReplica } from "./replica-harness.js";

/** A never-started replica whose Cancel RPCs are held until the test answers them. */
function replica(slotsTotal: number): { r: Replica; cancels: { taskId: string; done: () => void }[] } {
  const r = unstartedReplica(slotsTotal);
  const cancels: { taskId: string; done: () => void }[] = [];
  r.cancelGeneration = (taskId: string, done: () => void = () => {}) => void cancels.push({ taskId, done });
  return { r, cancels };
}

test("a held generation core does not want keeps its slot until the sidecar has cancelled it", (t) => {
  const { r, cancels } = replica(2);
  t.teardown(() => r.close());
  const recovery = new TaskRecovery({
    tasks: new TaskTable({ taskRetentionMs: 1_000, maxRetainedTasks: 10 }),
    logger: quietLogger,
  } as unknown as ConstructorParameters<typeof TaskRecovery>[0]);
  recovery.reclaim(r, ["gone-1"]);
  t.deepEqual(
    cancels.map((c) => c.taskId),
    ["gone-1"],
  );
  t.is(r.freeSlots, 1, "the sidecar still runs it: a Submit placed on that slot now would be refused");
  cancels[0]!.done();
  t.is(r.freeSlots, 2);
});
