import test from "ava";
import { TokenBuckets } from "../../../edge/middleware/rate-limit.js";

test("a caller gets its burst at once, then one request per refill interval, and is told the exact wait", (t) => {
  let now = 0;
  const b = new TokenBuckets({ perSecond: 2, burst: 3 }, () => now);
  t.deepEqual([b.take("a"), b.take("a"), b.take("a")], [0, 0, 0]);
  t.is(b.take("a"), 500);
  now += 499;
  t.true(b.take("a") > 0);
  now += 1;
  t.is(b.take("a"), 0);
  t.is(b.take("b"), 0, "callers do not share buckets");
});
