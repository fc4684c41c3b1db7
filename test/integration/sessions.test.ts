import test from "ava";
import { api, assertStreamConforms, stream, taskBody } from "../support/http.js";
import { TestSystem } from "../support/system.js";
import type { Json } from "../support/json.js";

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({
    coreFlags: { "session-max-turns": "3", "session-token-budget": "100", "cost-per-1k-tokens": "2", "session-cost-budget": "1" },
    workers: [
      { replica: "a", slots: 2 },
      { replica: "b", slots: 2 },
    ],
  });
});
test.after.always(async () => sys?.stop());

type T = Parameters<typeof api>[0];
async function run(t: T, body: Record<string, unknown>) {
  const admitted = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
  if (admitted.status !== 202) return { admitted, events: [] as { event: string; data: Json }[] };
  const path = `/v1/tasks/${body.task_id as string}/stream`;
  const s = await stream(sys.edgeUrl, path);
  await s.done;
  assertStreamConforms(t, path, s);
  return { admitted, events: s.events, s };
}

test("a session is created by its first task and reports turns, TTL, KV warmth and budgets", async (t) => {
  const session = crypto.randomUUID();
  const missing = await api(t, sys.edgeUrl, "GET", `/v1/sessions/${session}`);
  t.is(missing.status, 404);
  t.is(missing.json.code, "NOT_FOUND");
  const { admitted } = await run(t, taskBody({ session_id: session, max_tokens: 10, prompt: "one two three" }));
  t.is(admitted.headers.get("x-budget-tokens-remaining"), "100", "budgets as admitted (nothing spent yet)");
  const info = await api(t, sys.edgeUrl, "GET", `/v1/sessions/${session}`);
  t.is(info.status, 200);
  t.is(info.json.turns, 1);
  t.true(info.json.ttl_ms_remaining > 590_000 && info.json.ttl_ms_remaining <= 600_000);
  t.true(info.json.kv_warmth, "the replica that served it holds its KV");
  t.is(info.json.tokens_budget_remaining, 100 - 10 - 3);
  t.is(info.json.cost_budget_remaining, 1 - (13 / 1000) * 2);
});

test("budgets are reported in X-Budget-* headers on admission and stream, and in metrics frames", async (t) => {
  const session = crypto.randomUUID();
  await run(t, taskBody({ session_id: session, max_tokens: 20, prompt: "a b" }));
  const second = await run(t, taskBody({ session_id: session, max_tokens: 5, prompt: "a b" }));
  t.is(second.admitted.headers.get("x-budget-tokens-remaining"), String(100 - 22));
  t.truthy(second.admitted.headers.get("x-budget-cost-remaining"));
  const atStream = Number(second.s!.headers.get("x-budget-tokens-remaining"));
  t.true(
    atStream <= 100 - 22 && atStream >= 100 - 22 - 7,
    "stream headers carry the budgets at stream start, this task's usage so far included",
  );
  const metrics = second.events.filter((e) => e.event === "metrics");
  t.true(metrics.length > 0);
  t.true(metrics.every((m) => typeof m.data.tokens_budget_remaining === "number"));
});

test("an exhausted token budget refuses the next task with ADMISSION_REJECT (session-budget)", async (t) => {
  const session = crypto.randomUUID();
  await run(t, taskBody({ session_id: session, max_tokens: 120, ctx: 4096, prompt: "x" }));
  const refused = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ session_id: session }) });
  t.is(refused.status, 429);
  t.is(refused.json.code, "ADMISSION_REJECT");
  t.is(refused.json.policy_label, "session-budget");
  t.false(refused.json.retriable ?? false);
  t.regex(refused.json.message, /token budget/);
  t.is(refused.headers.get("x-backoff-ms"), null, "nothing to wait for: a new session is needed");
});

test("max turns are enforced per session", async (t) => {
  const session = crypto.randomUUID();
  for (let i = 0; i < 3; i++) t.is((await run(t, taskBody({ session_id: session, max_tokens: 1 }))).admitted.status, 202);
  const refused = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ session_id: session, max_tokens: 1 }) });
  t.is(refused.status, 429);
  t.is(refused.json.policy_label, "session-turns");
});

test.serial("a session's tasks stick to the replica holding its KV cache", async (t) => {
  const session = crypto.randomUUID();
  const first = await run(t, taskBody({ session_id: session, max_tokens: 3 }));
  const firstPlaced = first.events.find((e) => e.event === "metrics" && e.data.replica_id)!;
  t.false(firstPlaced.data.kv_warmth);
  const second = await run(t, taskBody({ session_id: session, max_tokens: 3 }));
  const placed = second.events.find((e) => e.event === "metrics" && e.data.replica_id)!;
  t.is(placed.data.replica_id, firstPlaced.data.replica_id);
  t.true(placed.data.kv_warmth);
});

test("DELETE removes the session, evicts its KV on the replica, and is 404 afterwards", async (t) => {
  const session = crypto.randomUUID();
  await run(t, taskBody({ session_id: session, max_tokens: 2 }));
  const del = await api(t, sys.edgeUrl, "DELETE", `/v1/sessions/${session}`);
  t.is(del.status, 204);
  t.is((await api(t, sys.edgeUrl, "GET", `/v1/sessions/${session}`)).status, 404);
  t.is((await api(t, sys.edgeUrl, "DELETE", `/v1/sessions/${session}`)).status, 404);
  await new Promise((r) => setTimeout(r, 200));
  t.true(
    sys.logsOf(sys.core, session).some((l) => l.event === "session_deleted" && l.kv_evicted === true),
    "core logged the KV eviction",
  );
  const bad = await api(t, sys.edgeUrl, "GET", "/v1/sessions/not-a-uuid");
  t.is(bad.status, 400);
});
