import test from "ava";
import { TokenBuckets } from "../../../edge/middleware/rate-limit.js";

test("a caller gets its burst at once, then one request per refill interval, and is told the exact wait", (t) => {
  let now = 0;
  const b = new TokenBuckets(() => now);
  const limit = { perSecond: 2, burst: 3 };
  t.deepEqual([b.take("a", limit), b.take("a", limit), b.take("a", limit)], [0, 0, 0]);
  t.is(b.take("a", limit), 500);
  now += 499;
  t.true(b.take("a", limit) > 0);
  now += 1;
  t.is(b.take("a", limit), 0);
  t.is(b.take("b", limit), 0, "callers do not share buckets");
});

test("each key's bucket follows its own limit, and a changed limit applies from the next request", (t) => {
  let now = 0;
  const b = new TokenBuckets(() => now);
  const slow = { perSecond: 1, burst: 1 };
  const fast = { perSecond: 10, burst: 10 };
  t.is(b.take("key:slow", slow), 0);
  t.is(b.take("key:slow", slow), 1000);
  for (let i = 0; i < 10; i++) t.is(b.take("key:fast", fast), 0);
  t.is(b.take("key:fast", fast), 100);
  now += 100;
  t.is(b.take("key:slow", { perSecond: 10, burst: 10 }), 0, "a reloaded, higher limit refills at its own rate");
});
