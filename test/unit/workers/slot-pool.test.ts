import test from "ava";
import { SlotPool } from "../../../workers/sidecar/slot-pool.js";

test("claims succeed until every slot is taken, then fail", (t) => {
  const pool = new SlotPool(2);
  const a = pool.claim();
  const b = pool.claim();
  t.truthy(a);
  t.truthy(b);
  t.is(pool.claim(), undefined);
  t.is(pool.free, 0);
});

test("a released slot can be claimed again, and releasing twice frees it once", (t) => {
  const pool = new SlotPool(1);
  const lease = pool.claim()!;
  lease.release();
  lease.release();
  t.is(pool.free, 1);
  t.truthy(pool.claim());
  t.is(pool.claim(), undefined);
});

test("every claim and release is announced with the current free count", (t) => {
  const pool = new SlotPool(3);
  const seen: number[] = [];
  const unsubscribe = pool.onChange((p) => seen.push(p.free));
  const lease = pool.claim()!;
  pool.claim();
  lease.release();
  unsubscribe();
  pool.claim();
  t.deepEqual(seen, [2, 1, 2]);
});

test("a pool needs at least one slot", (t) => {
  t.throws(() => new SlotPool(0));
  t.throws(() => new SlotPool(1.5));
});
