import test from "ava";
import { Engine } from "../../../contracts/gen/llama_orch/v1/common.js";
import type { ListPoolsResponse, PoolSummary } from "../../../contracts/gen/llama_orch/v1/pool.js";
import { Readiness, readinessOf } from "../../../edge/readiness.js";

function pool(id: string, over: Partial<PoolSummary> = {}): PoolSummary {
  return {
    id,
    engine: Engine.ENGINE_LLAMACPP,
    modelRef: "m",
    live: true,
    ready: true,
    draining: false,
    queueDepth: 0,
    slotsTotal: 2,
    slotsFree: 2,
    tasksRunning: 0,
    replicasTotal: 2,
    replicasReady: 2,
    queuedInteractive: 0,
    queuedBatch: 0,
    ...over,
  };
}

test("ready when a pool is ready and not draining; otherwise 503 with a reason naming each pool", (t) => {
  t.deepEqual(readinessOf([pool("a"), pool("b", { draining: true })]), { ready: true, poolsReady: 1, replicasReady: 2 });
  const unready = readinessOf([pool("a", { ready: false, replicasReady: 0 }), pool("b", { draining: true })]);
  t.false(unready.ready);
  if (unready.ready) return;
  t.is(unready.error.status, 503);
  t.like(unready.error.envelope(), { code: "POOL_UNREADY", retriable: true });
  t.is(unready.error.message, "no pool can take tasks: a has no ready replica (0 of 2); b is draining");
  const empty = readinessOf([]);
  t.like(!empty.ready && empty.error.envelope(), { code: "POOL_UNAVAILABLE", message: "no replica has registered with core" });
});

test("core's answer is reused for the max age, probes meanwhile share one call, and a failing core is POOL_UNAVAILABLE", async (t) => {
  let now = 0;
  let calls = 0;
  let reply: () => Promise<ListPoolsResponse> = () => Promise.resolve({ pools: [pool("a")] });
  const readiness = new Readiness(
    () => {
      calls++;
      return reply();
    },
    1_000,
    () => now,
  );
  const [first, second] = await Promise.all([readiness.check(), readiness.check()]);
  t.is(calls, 1, "concurrent probes share one call");
  t.deepEqual(first, second);
  now = 999;
  await readiness.check();
  t.is(calls, 1, "still fresh");
  reply = () => Promise.reject(new Error("core scheduler unreachable: connection refused"));
  now = 1_000;
  const down = await readiness.check();
  t.is(calls, 2);
  t.like(!down.ready && down.error.envelope(), { code: "POOL_UNAVAILABLE", message: "core scheduler unreachable: connection refused" });
  reply = () => Promise.reject(new Error("boom"));
  now = 2_500;
  const odd = await readiness.check();
  t.like(!odd.ready && odd.error.envelope(), { message: "core did not answer: boom" });
});
