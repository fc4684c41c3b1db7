import test from "ava";
import fc from "fast-check";
import { Priority } from "../../../contracts/gen/llama_orch/v1/common.js";
import { PoolQueue } from "../../../core/queue/pool-queue.js";

const I = Priority.PRIORITY_INTERACTIVE;
const B = Priority.PRIORITY_BATCH;

test("interactive entries leave before batch entries, FIFO within each class", (t) => {
  const q = new PoolQueue<string>(10);
  q.enqueue("b1", B, "b1");
  q.enqueue("i1", I, "i1");
  q.enqueue("b2", B, "b2");
  q.enqueue("i2", I, "i2");
  t.deepEqual([q.dequeue(), q.dequeue(), q.dequeue(), q.dequeue(), q.dequeue()], ["i1", "i2", "b1", "b2", undefined]);
});

test("a full queue refuses new entries and changes nothing", (t) => {
  const q = new PoolQueue<number>(2);
  t.true(q.enqueue("a", I, 1));
  t.true(q.enqueue("b", B, 2));
  t.false(q.enqueue("c", I, 3));
  t.is(q.size, 2);
  t.deepEqual(
    [...q.entries()].map(([k]) => k),
    ["a", "b"],
  );
});

test("the same id cannot be queued twice", (t) => {
  const q = new PoolQueue<number>(5);
  t.true(q.enqueue("a", I, 1));
  t.false(q.enqueue("a", B, 2));
  t.is(q.size, 1);
});

test("cancel removes a queued entry and positions close up", (t) => {
  const q = new PoolQueue<string>(5);
  for (const id of ["a", "b", "c"]) q.enqueue(id, I, id);
  t.is(q.positionOf("c"), 2);
  t.is(q.remove("b"), "b");
  t.is(q.positionOf("c"), 1);
  t.is(q.remove("b"), undefined);
  t.is(q.positionOf("b"), undefined);
});

test("requeueFront puts work back at the head of its class only", (t) => {
  const q = new PoolQueue<string>(5);
  q.enqueue("i1", I, "i1");
  q.enqueue("b1", B, "b1");
  q.requeueFront("b0", B, "b0");
  t.deepEqual(
    [...q.entries()].map(([k]) => k),
    ["i1", "b0", "b1"],
  );
});

test("capacity must be a positive integer", (t) => {
  t.throws(() => new PoolQueue(0), { instanceOf: RangeError });
});

type Op = { op: "enq"; id: number; batch: boolean } | { op: "deq" } | { op: "rm"; id: number };

test("property: the queue matches a simple model under any sequence of operations", (t) => {
  const ops = fc.array(
    fc.oneof(
      fc.record({ op: fc.constant("enq" as const), id: fc.integer({ min: 0, max: 30 }), batch: fc.boolean() }),
      fc.record({ op: fc.constant("deq" as const) }),
      fc.record({ op: fc.constant("rm" as const), id: fc.integer({ min: 0, max: 30 }) }),
    ),
    { maxLength: 200 },
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 12 }), ops, (capacity, sequence: Op[]) => {
      const q = new PoolQueue<number>(capacity);
      let modelI: number[] = [];
      let modelB: number[] = [];
      for (const o of sequence) {
        if (o.op === "enq") {
          const present = modelI.includes(o.id) || modelB.includes(o.id);
          const full = modelI.length + modelB.length >= capacity;
          const ok = q.enqueue(String(o.id), o.batch ? B : I, o.id);
          if (ok !== (!present && !full)) return false;
          if (ok) (o.batch ? modelB : modelI).push(o.id);
        } else if (o.op === "deq") {
          const expected = modelI.length ? modelI.shift() : modelB.shift();
          if (q.dequeue() !== expected) return false;
        } else {
          const had = modelI.includes(o.id) || modelB.includes(o.id);
          modelI = modelI.filter((x) => x !== o.id);
          modelB = modelB.filter((x) => x !== o.id);
          if ((q.remove(String(o.id)) !== undefined) !== had) return false;
        }
        if (q.size !== modelI.length + modelB.length || q.size > capacity) return false;
        const order = [...q.entries()].map(([, v]) => v);
        if (JSON.stringify(order) !== JSON.stringify([...modelI, ...modelB])) return false;
      }
      return true;
    }),
  );
  t.pass();
});
