import test from "ava";
import { Priority } from "../../../contracts/gen/llama_orch/v1/common.js";
import { PoolQueue } from "../../../core/queue/pool-queue.js";
import { onQueueFull } from "../../../core/scheduler/queue-policy.js";

const I = Priority.PRIORITY_INTERACTIVE;
const B = Priority.PRIORITY_BATCH;

function full(): PoolQueue<string> {
  const q = new PoolQueue<string>(4);
  q.enqueue("i1", I, "i1");
  q.enqueue("b-old", B, "b-old");
  q.enqueue("i2", I, "i2");
  q.enqueue("b-new", B, "b-new");
  return q;
}

test("reject turns every newcomer away", (t) => {
  t.deepEqual(onQueueFull(full(), "reject", I), { action: "refuse" });
});

test("drop-lru evicts the longest-waiting batch task, whatever the newcomer's priority", (t) => {
  t.like(onQueueFull(full(), "drop-lru", I), { action: "evict", victimId: "b-old" });
  t.like(onQueueFull(full(), "drop-lru", B), { action: "evict", victimId: "b-old" });
});

test("shed-low-priority sheds the newest batch task, and only for interactive work", (t) => {
  t.like(onQueueFull(full(), "shed-low-priority", I), { action: "evict", victimId: "b-new" });
  t.deepEqual(onQueueFull(full(), "shed-low-priority", B), { action: "refuse" });
});

test("with no batch task queued, nothing can be evicted", (t) => {
  const q = new PoolQueue<string>(2);
  q.enqueue("i1", I, "i1");
  q.enqueue("i2", I, "i2");
  t.deepEqual(onQueueFull(q, "drop-lru", I), { action: "refuse" });
  t.deepEqual(onQueueFull(q, "shed-low-priority", I), { action: "refuse" });
});
