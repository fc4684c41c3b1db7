import test from "ava";
import { api, stream, taskBody } from "../support/http.js";
import { listReplicas } from "../support/grpc.js";
import { TestSystem } from "../support/system.js";

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({
    workers: [
      { pool: "alpha", replica: "a1", flags: { "device-mask": "0" } },
      { pool: "alpha", replica: "a2", flags: { "device-mask": "1" } },
      { pool: "beta", replica: "b1", flags: { "device-mask": "0" } },
    ],
  });
});
test.after.always(async () => sys?.stop());

type T = Parameters<typeof api>[0];
/** Admits a task and returns the replica and pool it ran on (from the placement metrics frame). */
async function placedOn(t: T, placement: Record<string, unknown>): Promise<{ pool: string; replica: string }> {
  const body = taskBody({ max_tokens: 2, placement });
  const res = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
  t.is(res.status, 202, res.text);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
  await s.done;
  const m = s.events.find((e) => e.event === "metrics" && e.data.replica_id)!;
  return { pool: m.data.pool_id, replica: m.data.replica_id };
}

test("pin places on the pinned pool only", async (t) => {
  t.is((await placedOn(t, { mode: "pin", pin_pool_id: "beta" })).pool, "beta");
  const missing = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ placement: { mode: "pin", pin_pool_id: "gamma" } }) });
  t.is(missing.status, 503);
  t.is(missing.json.code, "POOL_UNAVAILABLE");
});

test("avoid_pools is never overridden", async (t) => {
  t.is((await placedOn(t, { avoid_pools: ["alpha"] })).pool, "beta");
  const nothingLeft = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ placement: { avoid_pools: ["alpha", "beta"] } }) });
  t.is(nothingLeft.status, 503);
  t.regex(nothingLeft.json.message, /avoid/);
});

test("require_device_mask places on exactly that device and never spills over", async (t) => {
  t.deepEqual(await placedOn(t, { require_device_mask: "1" }), { pool: "alpha", replica: "a2" });
  const none = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ placement: { require_device_mask: "7" } }) });
  t.is(none.status, 503);
  t.is(none.json.code, "POOL_UNAVAILABLE");
  t.regex(none.json.message, /device/);
});

test("prefer falls back to other pools unless allow_fallback is false", async (t) => {
  t.true(["alpha", "beta"].includes((await placedOn(t, { mode: "prefer", prefer_pools: ["gamma"] })).pool));
  t.is((await placedOn(t, { mode: "prefer", prefer_pools: ["beta"] })).pool, "beta");
  const strict = await api(t, sys.edgeUrl, "POST", "/v1/tasks", {
    body: taskBody({ placement: { mode: "prefer", prefer_pools: ["gamma"], allow_fallback: false } }),
  });
  t.is(strict.status, 503);
  t.is(strict.json.code, "POOL_UNAVAILABLE");
});

test.serial("placement is deterministic: equal requests on an idle system land on the same replica", async (t) => {
  const a = await placedOn(t, { require_device_mask: "0" });
  const b = await placedOn(t, { require_device_mask: "0" });
  t.deepEqual(a, b);
});

test("a pool that is still loading answers POOL_UNREADY, then serves once loaded", async (t) => {
  const loading = await TestSystem.start({ workers: [] });
  t.teardown(() => loading.stop());
  await loading.startWorker({ engine: "vllm", flags: { "load-ms": "5000" } }, "slow-loader");
  for (let i = 0; i < 50 && (await listReplicas(loading.coreAddress)).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  const early = await api(t, loading.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ engine: "vllm" }) });
  t.is(early.status, 503);
  t.is(early.json.code, "POOL_UNREADY");
  t.true(early.json.retriable);
  await loading.waitForReadyReplicas(1);
  t.is((await api(t, loading.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ engine: "vllm", max_tokens: 1 }) })).status, 202);
});

test("work no replica can start is retried, then ends with REPLICA_EXHAUSTED", async (t) => {
  const body = taskBody({ max_tokens: 5, prompt: "[[mock fail_after=0 fail_kind=capacity]] busy" });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
  await s.done;
  t.is(s.events.at(-1)!.event, "error");
  t.is(s.events.at(-1)!.data.code, "REPLICA_EXHAUSTED");
  t.regex(s.events.at(-1)!.data.message, /after 5 attempts/);
});
