import test from "ava";
import { api, type ApiResponse } from "../support/http.js";
import { TestSystem } from "../support/system.js";

type T = Parameters<typeof api>[0];

const KEY = "llorch-probe-secret-91c2";

/** Polls /readyz until `done` holds (core's answer is reused for a second, so a change shows within about that). */
async function readyz(t: T, sys: TestSystem, done: (r: ApiResponse) => boolean): Promise<ApiResponse> {
  for (let i = 0; i < 60; i++) {
    const res = await api(t, sys.edgeUrl, "GET", "/readyz");
    if (done(res)) return res;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("/readyz never gave the expected answer");
}

test("/healthz and /readyz answer without the API key: ready while a pool takes tasks, 503 with the reason once none does", async (t) => {
  const sys = await TestSystem.start({ apiKey: KEY, workers: [{ pool: "p", replica: "p1", slots: 2 }] });
  t.teardown(() => sys.stop());
  const health = await api(t, sys.edgeUrl, "GET", "/healthz");
  t.is(health.status, 200);
  t.deepEqual(health.json, { status: "ok" });
  const ready = await api(t, sys.edgeUrl, "GET", "/readyz");
  t.is(ready.status, 200);
  t.deepEqual(ready.json, { status: "ready", pools_ready: 1, replicas_ready: 1 });

  const drained = await api(t, sys.edgeUrl, "POST", "/v1/pools/p/drain", {
    body: { deadline_ms: 60_000 },
    headers: { Authorization: `Bearer ${KEY}` },
  });
  t.is(drained.status, 202);
  const unready = await readyz(t, sys, (r) => r.status === 503);
  t.like(unready.json, { code: "POOL_UNREADY", message: "no pool can take tasks: p is draining", retriable: true });

  await sys.killCore();
  const down = await readyz(t, sys, (r) => r.status === 503 && r.json.code === "POOL_UNAVAILABLE");
  t.regex(down.json.message as string, /^core scheduler unreachable/);
  t.is((await api(t, sys.edgeUrl, "GET", "/healthz")).status, 200, "the edge itself is still up");
});

test("/readyz is 503 POOL_UNAVAILABLE while no replica has registered, and ready once one has", async (t) => {
  const sys = await TestSystem.start({ workers: [] });
  t.teardown(() => sys.stop());
  const none = await api(t, sys.edgeUrl, "GET", "/readyz");
  t.is(none.status, 503);
  t.like(none.json, { code: "POOL_UNAVAILABLE", message: "no replica has registered with core" });
  await sys.startWorker({ pool: "p" }, "late");
  await sys.waitForReadyReplicas(1);
  const ready = await readyz(t, sys, (r) => r.status === 200);
  t.like(ready.json, { pools_ready: 1, replicas_ready: 1 });
});
