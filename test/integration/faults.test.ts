import test from "ava";
import { api, stream, taskBody } from "../support/http.js";
import { listReplicas } from "../support/grpc.js";
import { TestSystem } from "../support/system.js";

// Each test gets its own system: they kill and restart processes.

test("a sidecar killed mid-stream ends the stream with WORKER_RESET; restarted, it serves again", async (t) => {
  const sys = await TestSystem.start({ workers: [{ replica: "victim", slots: 2, tokensPerSecond: 50 }] });
  t.teardown(() => sys.stop());
  const admitted = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1000 }) });
  t.is(admitted.status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${admitted.json.task_id}/stream`);
  await s.waitFor(3, "token");
  await sys.killWorker("victim");
  await s.done;
  const last = s.events.at(-1)!;
  t.is(last.event, "error");
  t.is(last.data.code, "WORKER_RESET");
  t.false(s.events.slice(0, -1).some((e) => e.event === "end" || e.event === "error"));

  // Its replica left placement: new work is refused until it is back.
  const meanwhile = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody() });
  t.is(meanwhile.status, 503);

  await sys.restartWorker("victim");
  await sys.waitForReadyReplicas(1);
  const again = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 4 }) });
  t.is(again.status, 202);
  const s2 = await stream(sys.edgeUrl, `/v1/tasks/${again.json.task_id}/stream`);
  await s2.done;
  t.is(s2.events.at(-1)!.event, "end");
});

test("queued work moves to a surviving replica when its sidecar dies", async (t) => {
  const sys = await TestSystem.start({
    workers: [
      { replica: "a", slots: 1, tokensPerSecond: 30 },
      { replica: "b", slots: 1, tokensPerSecond: 30 },
    ],
  });
  t.teardown(() => sys.stop());
  const first = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1000 }) });
  const second = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1000 }) });
  const queued = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 3 }) });
  t.true(queued.json.queue_position >= 0);
  const s1 = await stream(sys.edgeUrl, `/v1/tasks/${first.json.task_id}/stream`);
  await s1.waitFor(1, "metrics");
  const victim = s1.events.find((e) => e.event === "metrics")!.data.replica_id as string;
  const sq = await stream(sys.edgeUrl, `/v1/tasks/${queued.json.task_id}/stream`);
  await sys.killWorker(victim);
  await s1.done;
  t.is(s1.events.at(-1)!.data.code, "WORKER_RESET");
  // The queued task waits for the survivor, whose long task we cancel to make room.
  await api(t, sys.edgeUrl, "POST", `/v1/tasks/${second.json.task_id}/cancel`);
  await sq.done;
  t.is(sq.events.at(-1)!.event, "end");
  t.not(sq.events.find((e) => e.event === "metrics")!.data.replica_id, victim);
});

test("core restarts: sidecars register again and the edge reconnects, nobody restarts anything else", async (t) => {
  const sys = await TestSystem.start({ workers: [{ replica: "w", slots: 2 }] });
  t.teardown(() => sys.stop());
  await sys.killCore();
  const during = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody() });
  t.is(during.status, 503, "while core is down the edge answers 503, not 500");
  await sys.restartCore();
  await sys.waitForReadyReplicas(1);
  // The edge's channel reconnects on its own within its (1 s) reconnect backoff.
  let after = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 3 }) });
  for (let i = 0; i < 30 && after.status === 503; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 3 }) });
  }
  t.is(after.status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${after.json.task_id}/stream`);
  await s.done;
  t.is(s.events.at(-1)!.event, "end");
});

test("an engine failure after N tokens arrives as a typed error frame after those tokens", async (t) => {
  const sys = await TestSystem.start({
    workers: [{ replica: "flaky", slots: 1, flags: { "fail-after": "3", "fail-kind": "engine_error" } }],
  });
  t.teardown(() => sys.stop());
  const admitted = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 10 }) });
  const s = await stream(sys.edgeUrl, `/v1/tasks/${admitted.json.task_id}/stream`);
  await s.done;
  t.is(s.events.filter((e) => e.event === "token").length, 3);
  const last = s.events.at(-1)!;
  t.is(last.event, "error");
  t.is(last.data.code, "INTERNAL");
  t.is(last.data.engine, "llamacpp");
});

test("a hung engine can still be cancelled, and its slot comes back", async (t) => {
  const sys = await TestSystem.start({ workers: [{ replica: "stuck", slots: 1, flags: { "hang-after": "2" } }] });
  t.teardown(() => sys.stop());
  const hung = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 10 }) });
  const s = await stream(sys.edgeUrl, `/v1/tasks/${hung.json.task_id}/stream`);
  await s.waitFor(2, "token");
  t.is((await api(t, sys.edgeUrl, "POST", `/v1/tasks/${hung.json.task_id}/cancel`)).status, 204);
  await s.done;
  t.is(s.events.at(-1)!.data.stop_reason, "canceled");
  // The single slot is free again: a task that needs fewer tokens than the hang point completes.
  const next = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1 }) });
  const s2 = await stream(sys.edgeUrl, `/v1/tasks/${next.json.task_id}/stream`);
  await s2.done;
  t.is(s2.events.at(-1)!.event, "end");
});

test("a session whose replica died fails over to another and reports kv_warmth=false", async (t) => {
  const sys = await TestSystem.start({
    workers: [
      { replica: "x", slots: 2 },
      { replica: "y", slots: 2 },
    ],
  });
  t.teardown(() => sys.stop());
  const session = crypto.randomUUID();
  const first = taskBody({ session_id: session, max_tokens: 2 });
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: first });
  const s1 = await stream(sys.edgeUrl, `/v1/tasks/${first.task_id}/stream`);
  await s1.done;
  const home = s1.events.find((e) => e.event === "metrics" && e.data.replica_id)!.data.replica_id as string;
  await sys.killWorker(home);
  for (let i = 0; i < 50 && (await listReplicas(sys.coreAddress)).length !== 1; i++) await new Promise((r) => setTimeout(r, 50));
  const second = taskBody({ session_id: session, max_tokens: 2 });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: second })).status, 202);
  const s2 = await stream(sys.edgeUrl, `/v1/tasks/${second.task_id}/stream`);
  await s2.done;
  const placed = s2.events.find((e) => e.event === "metrics" && e.data.replica_id)!;
  t.not(placed.data.replica_id, home);
  t.false(placed.data.kv_warmth);
});
