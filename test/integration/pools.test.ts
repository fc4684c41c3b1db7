import test from "ava";
import { api, stream, taskBody } from "../support/http.js";
import { TestSystem } from "../support/system.js";
import type { Json } from "../support/json.js";

type T = Parameters<typeof api>[0];

async function health(t: T, sys: TestSystem, pool: string) {
  return api(t, sys.edgeUrl, "GET", `/v1/pools/${pool}/health`);
}

async function waitFor(t: T, sys: TestSystem, pool: string, done: (h: Json) => boolean): Promise<Json> {
  for (let i = 0; i < 200; i++) {
    const h = (await health(t, sys, pool)).json;
    if (done(h)) return h;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`pool ${pool} never reached the expected state`);
}

test("pool health reports live, ready, draining and a metrics snapshot with replicas; unknown pools are 404", async (t) => {
  const sys = await TestSystem.start({
    workers: [
      { pool: "p", replica: "p1", slots: 3 },
      { pool: "p", replica: "p2", slots: 3 },
    ],
  });
  t.teardown(() => sys.stop());
  const h = await health(t, sys, "p");
  t.is(h.status, 200);
  t.like(h.json, { live: true, ready: true, draining: false });
  t.is(h.json.metrics.slots_total, 6);
  t.is(h.json.metrics.queue_depth, 0);
  t.deepEqual(
    h.json.metrics.replicas.map((r: Json) => [r.replica_id, r.state]),
    [
      ["p1", "ready"],
      ["p2", "ready"],
    ],
  );
  const missing = await health(t, sys, "nope");
  t.is(missing.status, 404);
  t.is(missing.json.code, "NOT_FOUND");
});

test("capabilities aggregate the live sidecars and report the OpenAPI version", async (t) => {
  const sys = await TestSystem.start({
    workers: [
      { pool: "a", replica: "a1", slots: 2, flags: { "ctx-max": "4096" } },
      { pool: "b", replica: "b1", slots: 3, flags: { "ctx-max": "16384" } },
      { pool: "v", replica: "v1", slots: 5, engine: "vllm", model: "hf:org/model" },
    ],
  });
  t.teardown(() => sys.stop());
  const doc = await api(t, sys.edgeUrl, "GET", "/openapi.json");
  const caps = await api(t, sys.edgeUrl, "GET", "/v1/capabilities");
  t.is(caps.status, 200);
  t.is(caps.json.api_version, doc.json.info.version);
  const llama = caps.json.engines.find((e: Json) => e.engine === "llamacpp");
  t.like(llama, { ctx_max: 16384, concurrency: 5, supported_workloads: ["completion"] });
  t.is(caps.json.engines.find((e: Json) => e.engine === "vllm").concurrency, 5);
  t.true(caps.json.models.includes("hf:org/model"));
});

test("drain: nothing new is admitted at once, in-flight work finishes, what outlives the deadline is cancelled", async (t) => {
  const sys = await TestSystem.start({ workers: [{ pool: "d", replica: "d1", slots: 2, tokensPerSecond: 50 }] });
  t.teardown(() => sys.stop());
  const short = taskBody({ max_tokens: 40 });
  const long = taskBody({ max_tokens: 2000, ctx: 4096 });
  for (const b of [short, long]) t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: b })).status, 202);
  const shortStream = await stream(sys.edgeUrl, `/v1/tasks/${short.task_id}/stream`);
  const longStream = await stream(sys.edgeUrl, `/v1/tasks/${long.task_id}/stream`);
  await longStream.waitFor(1, "token");
  const drain = await api(t, sys.edgeUrl, "POST", "/v1/pools/d/drain", { body: { deadline_ms: 3000 } });
  t.is(drain.status, 202);
  t.true(drain.json.tasks_in_flight >= 1);
  t.true((await health(t, sys, "d")).json.draining);
  const refused = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody() });
  t.is(refused.status, 503, "the draining pool admits nothing new");
  await shortStream.done;
  t.is(shortStream.events.at(-1)!.data.stop_reason, "max_tokens", "in-flight work that fits the deadline finishes");
  await longStream.done;
  t.is(longStream.events.at(-1)!.data.code, "POOL_UNAVAILABLE", "work past the deadline ends with a typed error");
  const after = await health(t, sys, "d");
  t.true(after.json.draining, "health shows draining throughout");
  t.is(after.json.metrics.tasks_running, 0);
});

test("reload: every replica switches model and the pool is Ready on it; a failure on one replica rolls every replica back", async (t) => {
  const sys = await TestSystem.start({
    workers: [
      { pool: "r", replica: "r1", model: "hf:org/model-a", flags: { "serves-any-model": "false", "reload-ms": "4000" } },
      {
        pool: "r",
        replica: "r2",
        model: "hf:org/model-a",
        flags: { "serves-any-model": "false", "reload-ms": "4000", "reject-models": "hf:org/model-c" },
      },
    ],
  });
  t.teardown(() => sys.stop());
  const ok = await api(t, sys.edgeUrl, "POST", "/v1/pools/r/reload", { body: { new_model_ref: "hf:org/model-b" } });
  t.is(ok.status, 202);
  t.is(ok.json.previous_model_ref, "hf:org/model-a");
  const during = await health(t, sys, "r");
  t.false(during.json.ready, "not Ready while loading: " + JSON.stringify(during.json));
  const loaded = await waitFor(t, sys, "r", (h) => h.metrics.reload_state === "idle");
  t.true(loaded.ready);
  t.deepEqual(
    loaded.metrics.replicas.map((r: Json) => r.model_ref),
    ["hf:org/model-b", "hf:org/model-b"],
  );
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "hf:org/model-b", max_tokens: 1 }) })).status, 202);
  t.is(
    (await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "hf:org/model-a" }) })).status,
    503,
    "the old model is gone",
  );

  const failing = await api(t, sys.edgeUrl, "POST", "/v1/pools/r/reload", { body: { new_model_ref: "hf:org/model-c" } });
  t.is(failing.status, 202);
  const rolledBack = await waitFor(t, sys, "r", (h) => h.metrics.reload_state === "idle" && h.metrics.last_reload_error);
  t.true(rolledBack.ready, "Ready again on the previous model");
  t.deepEqual(
    rolledBack.metrics.replicas.map((r: Json) => r.model_ref),
    ["hf:org/model-b", "hf:org/model-b"],
  );
  t.regex(rolledBack.metrics.last_reload_error, /r2/);
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "hf:org/model-b", max_tokens: 1 }) })).status, 202);
});

test("control requests are validated: bad bodies, bad model refs and unknown pools", async (t) => {
  const sys = await TestSystem.start({ workers: [{ pool: "v", replica: "v1" }] });
  t.teardown(() => sys.stop());
  const noDeadline = await api(t, sys.edgeUrl, "POST", "/v1/pools/v/drain", { body: {} });
  t.is(noDeadline.status, 400);
  t.is(noDeadline.json.field, "/deadline_ms");
  const badRef = await api(t, sys.edgeUrl, "POST", "/v1/pools/v/reload", { body: { new_model_ref: "ftp://nope" } });
  t.is(badRef.status, 400);
  t.is(badRef.json.field, "/new_model_ref");
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/pools/ghost/drain", { body: { deadline_ms: 10 } })).status, 404);
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/pools/ghost/reload", { body: { new_model_ref: "hf:a/b" } })).status, 404);
  const huge = await api(t, sys.edgeUrl, "POST", "/v1/pools/v/reload", { body: { new_model_ref: "hf:a/b", pad: "x".repeat(2_000_000) } });
  t.is(huge.status, 413);
});
