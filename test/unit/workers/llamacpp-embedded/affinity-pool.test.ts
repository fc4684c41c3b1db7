import test from "ava";
import { AffinityPool } from "../../../../workers/llamacpp-embedded/affinity-pool.js";

test("a session goes back to the slot that served it when that slot is free, and that slot is warm", (t) => {
  const pool = new AffinityPool(["s0", "s1"]);
  const first = pool.claim("alice")!;
  const other = pool.claim("bob")!;
  first.release();
  other.release();
  const again = pool.claim("alice")!;
  t.is(again.slot, first.slot);
  t.true(again.warm);
  t.false(pool.claim("carol")!.warm);
});

test("a new session takes the least recently used free slot; none free is undefined", (t) => {
  const pool = new AffinityPool(["s0", "s1"]);
  const a = pool.claim("a")!;
  const b = pool.claim("b")!;
  t.is(pool.claim("c"), undefined);
  b.release();
  a.release();
  t.is(pool.claim("c")!.slot, b.slot, "b was released first, so it is the coldest");
});

test("a lease released twice gives its slot back once", (t) => {
  const pool = new AffinityPool(["s0"]);
  const lease = pool.claim("a")!;
  lease.release();
  const next = pool.claim("b")!;
  lease.release();
  t.is(pool.free, 0, "the second release did not free the slot the next task holds");
  next.release();
  t.is(pool.free, 1);
});

test("forget hands back the free slot holding a session's state, once", (t) => {
  const pool = new AffinityPool(["s0", "s1"]);
  const lease = pool.claim("a")!;
  lease.release();
  t.is(pool.forget("a"), lease.slot);
  t.is(pool.forget("a"), undefined);
  t.false(pool.claim("a")!.warm);
});
