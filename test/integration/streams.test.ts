import test from "ava";
import { connect } from "node:net";
import { api, assertStreamConforms, stream, taskBody } from "../support/http.js";
import { TestSystem } from "../support/system.js";

test("watchdog: a task that stops producing ends with DECODE_TIMEOUT and frees its slot", async (t) => {
  const sys = await TestSystem.start({ coreFlags: { "idle-timeout-ms": "400" }, workers: [{ replica: "w", slots: 1 }] });
  t.teardown(() => sys.stop());
  const hung = taskBody({ max_tokens: 50, prompt: "[[mock hang_after=3]] x" });
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: hung });
  const path = `/v1/tasks/${hung.task_id}/stream`;
  const s = await stream(sys.edgeUrl, path);
  await s.done;
  assertStreamConforms(t, path, s);
  t.is(s.events.filter((e) => e.event === "token").length, 3);
  t.is(s.events.at(-1)!.event, "error");
  t.is(s.events.at(-1)!.data.code, "DECODE_TIMEOUT");
  const next = taskBody({ max_tokens: 3 });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: next })).status, 202);
  const s2 = await stream(sys.edgeUrl, `/v1/tasks/${next.task_id}/stream`);
  await s2.done;
  t.is(s2.events.at(-1)!.event, "end", "the hung task's slot was given back on the worker");
});

test("watchdog: a task past its wall time ends with DECODE_TIMEOUT", async (t) => {
  const sys = await TestSystem.start({
    coreFlags: { "wall-timeout-ms": "500" },
    workers: [{ replica: "w", slots: 1, tokensPerSecond: 20 }],
  });
  t.teardown(() => sys.stop());
  const slow = taskBody({ max_tokens: 1000, ctx: 4096 });
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: slow });
  const s = await stream(sys.edgeUrl, `/v1/tasks/${slow.task_id}/stream`);
  await s.done;
  t.is(s.events.at(-1)!.data.code, "DECODE_TIMEOUT");
  t.regex(s.events.at(-1)!.data.message, /wall timeout/);
});

test("disconnect: a client that comes back within the grace period resumes with Last-Event-ID; one that does not cancels the task", async (t) => {
  const sys = await TestSystem.start({
    coreFlags: { "disconnect-grace-ms": "1000" },
    workers: [{ replica: "w", slots: 2, tokensPerSecond: 20 }],
  });
  t.teardown(() => sys.stop());
  const body = taskBody({ max_tokens: 60 });
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
  const path = `/v1/tasks/${body.task_id}/stream`;
  const first = await stream(sys.edgeUrl, path);
  await first.waitFor(5, "token");
  first.abort();
  await first.done;
  const lastId = first.events.at(-1)!.id!;
  const resumed = await stream(sys.edgeUrl, path, { "Last-Event-ID": lastId });
  await resumed.done;
  const both = [...first.events, ...resumed.events];
  t.is(both.at(-1)!.event, "end");
  t.is(both.at(-1)!.data.stop_reason, "max_tokens", "the task ran to completion");
  const all = both.filter((e) => e.event === "token").map((e) => e.data.i);
  t.deepEqual(
    all,
    Array.from({ length: 60 }, (_, i) => i),
    "every token exactly once across the two connections",
  );

  const abandoned = taskBody({ max_tokens: 1000, ctx: 4096, deadline_ms: 3_600_000 });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: abandoned })).status, 202);
  const gone = await stream(sys.edgeUrl, `/v1/tasks/${abandoned.task_id}/stream`);
  await gone.waitFor(2, "token");
  const abortedAt = Date.now();
  gone.abort();
  // Watch core's log rather than the stream: opening one would count as the client coming back.
  let cancelLine: Record<string, unknown> | undefined;
  for (let i = 0; i < 200 && !cancelLine; i++) {
    await new Promise((r) => setTimeout(r, 50));
    cancelLine = sys.logsOf(sys.core, abandoned.task_id).find((l) => l.event === "canceled");
  }
  t.is(cancelLine?.reason, "disconnect");
  t.true(Date.now() - abortedAt >= 1_000, "not before the grace period");
  const replay = await stream(sys.edgeUrl, `/v1/tasks/${abandoned.task_id}/stream`);
  await replay.done;
  t.is(replay.status, 200, replay.raw());
  t.is(replay.events.at(-1)?.data.stop_reason, "canceled", "cancelled after the grace period");
});

test("disconnect with zero grace cancels at once and frees the engine slot", async (t) => {
  const sys = await TestSystem.start({
    coreFlags: { "disconnect-grace-ms": "0" },
    workers: [{ replica: "w", slots: 1, tokensPerSecond: 50 }],
  });
  t.teardown(() => sys.stop());
  const body = taskBody({ max_tokens: 1000, ctx: 4096 });
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
  await s.waitFor(2, "token");
  s.abort();
  // The single slot is needed by the next task; it completes only if the abandoned one was cancelled.
  const next = taskBody({ max_tokens: 3 });
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: next });
  const s2 = await stream(sys.edgeUrl, `/v1/tasks/${next.task_id}/stream`);
  await s2.done;
  t.is(s2.events.at(-1)!.event, "end");
  const replay = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
  await replay.done;
  t.is(replay.events.at(-1)!.data.stop_reason, "canceled");
});

test("queued streams get heartbeat comments and metrics frames as the queue moves", async (t) => {
  const sys = await TestSystem.start({
    edgeFlags: { "sse-heartbeat-ms": "100" },
    workers: [{ replica: "w", slots: 1, tokensPerSecond: 40 }],
  });
  t.teardown(() => sys.stop());
  const running = taskBody({ max_tokens: 1000, ctx: 4096 });
  const ahead = taskBody({ max_tokens: 1000, ctx: 4096 });
  const waiting = taskBody({ max_tokens: 3 });
  for (const b of [running, ahead, waiting]) t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: b })).status, 202);
  const path = `/v1/tasks/${waiting.task_id}/stream`;
  const s = await stream(sys.edgeUrl, path);
  await s.waitFor(1, "started");
  t.is(s.events[0]!.data.queue_position, 1);
  for (let i = 0; i < 100 && !s.raw().includes(": keep-alive"); i++) await new Promise((r) => setTimeout(r, 50));
  t.true(s.raw().includes(": keep-alive"), "an idle stream carries heartbeat comments");
  await api(t, sys.edgeUrl, "POST", `/v1/tasks/${running.task_id}/cancel`);
  await s.waitFor(2);
  const moved = s.events.find((e) => e.event === "metrics" && e.data.queue_position !== undefined);
  t.is(moved?.data.queue_position, 0, "a metrics frame reports the new position");
  await api(t, sys.edgeUrl, "POST", `/v1/tasks/${ahead.task_id}/cancel`);
  await s.done;
  assertStreamConforms(t, path, s);
  t.is(s.events.at(-1)!.event, "end");
});

test("a slow reader gets every token, in order, with the server holding the backlog for it", async (t) => {
  const sys = await TestSystem.start({ workers: [{ replica: "w", slots: 1, flags: { "ctx-max": "32768" } }] });
  t.teardown(() => sys.stop());
  const body = taskBody({ max_tokens: 20_000, ctx: 32_768, prompt: "a long answer please" });
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
  const url = new URL(sys.edgeUrl);
  const socket = connect(Number(url.port), url.hostname);
  socket.write(`GET /v1/tasks/${body.task_id}/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  socket.pause(); // read nothing while the task runs to completion
  await new Promise((r) => setTimeout(r, 1_500));
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  socket.resume();
  await new Promise((r) => socket.once("end", r));
  const text = Buffer.concat(chunks).toString("utf8");
  const indices = [...text.matchAll(/"i":(\d+)\}/g)].map((m) => Number(m[1]));
  t.is(indices.length, 20_000);
  t.true(
    indices.every((v, i) => v === i),
    "no token lost, duplicated or reordered",
  );
  t.regex(text, /event: end\ndata: \{"tokens_out":20000/);
});

test("cancel is race-free right after admission: every stream ends with end{canceled} and counts exactly what it delivered", async (t) => {
  const sys = await TestSystem.start({ workers: [{ replica: "w", slots: 4 }] });
  t.teardown(() => sys.stop());
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      const body = taskBody({ max_tokens: 2000, ctx: 4096, prompt: "[[mock tokens_per_second=200]] race" });
      await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
      const cancel = await api(t, sys.edgeUrl, "POST", `/v1/tasks/${body.task_id}/cancel`);
      t.is(cancel.status, 204);
      const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
      await s.done;
      const end = s.events.at(-1)!;
      t.is(end.event, "end");
      t.is(end.data.stop_reason, "canceled");
      t.is(end.data.tokens_out, s.events.filter((e) => e.event === "token").length);
    }),
  );
});
