import test from "ava";
import fc from "fast-check";
import {
  onTimeProbability,
  predictQueueStartsMs,
  predictStartMs,
  ThroughputEstimator,
} from "../../../core/scheduler/throughput-estimator.js";

test("nothing is predicted before a replica was measured", (t) => {
  const e = new ThroughputEstimator();
  t.is(e.predictDurationMs(["r1"], 100), undefined);
});

test("predictions follow the measured speed and adapt when it changes", (t) => {
  const e = new ThroughputEstimator();
  e.record("r1", { firstTokenMs: 10, tokens: 101, decodeMs: 110 }); // 1 ms per token after the first
  t.is(e.predictDurationMs(["r1"], 101), 110);
  for (let i = 0; i < 30; i++) e.record("r1", { firstTokenMs: 10, tokens: 101, decodeMs: 1010 }); // now 10 ms per token
  const adapted = e.predictDurationMs(["r1"], 101)!;
  t.true(adapted > 950 && adapted <= 1010, `adapted to ${adapted}`);
});

test("with free slots work starts at once; otherwise when the earliest slot frees", (t) => {
  t.is(predictStartMs({ slots: 2, busyRemainingMs: [500], aheadDurationsMs: [] }), 0);
  t.is(predictStartMs({ slots: 2, busyRemainingMs: [500, 300], aheadDurationsMs: [] }), 300);
  t.is(predictStartMs({ slots: 2, busyRemainingMs: [500, 300], aheadDurationsMs: [400] }), 500);
  t.deepEqual(predictQueueStartsMs({ slots: 1, busyRemainingMs: [100], durationsMs: [50, 50, 50] }), [100, 150, 200]);
  t.is(predictStartMs({ slots: 0, busyRemainingMs: [], aheadDurationsMs: [] }), Infinity);
});

test("property: predicted starts never decrease along the queue and never precede the first free slot", (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.nat(10_000), { maxLength: 8 }),
      fc.array(fc.nat(10_000), { maxLength: 40 }),
      (slots, busy, durations) => {
        const sorted = [...busy].sort((a, b) => a - b).slice(0, slots);
        const starts = predictQueueStartsMs({ slots, busyRemainingMs: sorted, durationsMs: durations });
        const firstFree = sorted.length < slots ? 0 : sorted[0]!;
        return starts.every((s, i) => s >= firstFree && (i === 0 || s >= starts[i - 1]!));
      },
    ),
  );
  t.pass();
});

test("the on-time probability falls as the predicted finish approaches and passes the deadline", (t) => {
  const early = onTimeProbability(1_000, 10_000, 0.2);
  const close = onTimeProbability(9_500, 10_000, 0.2);
  const late = onTimeProbability(20_000, 10_000, 0.2);
  t.true(early > 0.99);
  t.true(close > late && close < early);
  t.true(late < 0.01);
  t.true([early, close, late].every((p) => p >= 0 && p <= 1));
});
