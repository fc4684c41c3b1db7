import test, { type ExecutionContext } from "ava";
import { api, assertStreamConforms, stream, taskBody, tokenIndices, type SseStream } from "../support/http.js";
import { checkResponse } from "../support/openapi-check.js";
import { TestSystem } from "../support/system.js";

// Core killed (or hung) while streams are open: the edge holds them, the
// sidecar keeps the generation, the journal keeps the queue, and whatever
// cannot survive ends with a typed, retriable error, never a bare close.

/** Every token frame once, in order, from 0; then the end, and nothing but metrics between. */
function assertWhole(t: ExecutionContext, s: SseStream, tokens: number, path: string): void {
  t.deepEqual(
    tokenIndices(s.events),
    Array.from({ length: tokens }, (_, i) => i),
    "token indices are contiguous across the restart, none missing, none twice",
  );
  t.is(s.events.filter((e) => e.event === "started").length, 1);
  t.is(s.events.at(-1)!.event, "end");
  t.false(s.events.some((e) => e.event === "error"));
  assertStreamConforms(t, path, s);
}

/** The unfinished tasks' ids, once the edge reaches the restarted core (its channel reconnects within a second). */
async function listed(t: ExecutionContext, sys: TestSystem): Promise<string[]> {
  for (let attempt = 0; ; attempt++) {
    const res = await api<{ tasks: { task_id: string }[] }>(t, sys.edgeUrl, "GET", "/v1/tasks");
    if (res.status === 200 || attempt === 50) return res.json.tasks.map((x) => x.task_id);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("kill -9 of core mid-stream, restarted within the grace: the stream carries on to its end, and the queued tasks run after the restart", async (t) => {
  const sys = await TestSystem.start({ workers: [{ replica: "w", slots: 1, tokensPerSecond: 40 }] });
  t.teardown(() => sys.stop());
  const running = taskBody({ max_tokens: 200 });
  const queued = [taskBody({ max_tokens: 3 }), taskBody({ max_tokens: 3 })];
  for (const body of [running, ...queued]) t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
  const path = `/v1/tasks/${running.task_id}/stream`;
  const s = await stream(sys.edgeUrl, path);
  const first = await stream(sys.edgeUrl, `/v1/tasks/${queued[0]!.task_id}/stream`);
  await s.waitFor(3, "token");

  await sys.killCore();
  await sys.restartCore();
  // The queued tasks are back, in order, under their ids, before anything else happened.
  t.deepEqual((await listed(t, sys)).slice(-2), [queued[0]!.task_id, queued[1]!.task_id]);

  await s.done;
  assertWhole(t, s, 200, path);
  // The stream of the first queued task was open through the restart too; the second is opened only now.
  await first.done;
  const second = await stream(sys.edgeUrl, `/v1/tasks/${queued[1]!.task_id}/stream`);
  await second.done;
  for (const q of [first, second]) t.is(q.events.at(-1)!.event, "end");
  const dispatched = await api<{ tasks: { task_id: string; dispatched_ms: number }[] }>(t, sys.edgeUrl, "GET", "/v1/tasks?state=finished");
  const at = (id: string) => dispatched.json.tasks.find((x) => x.task_id === id)!.dispatched_ms;
  t.true(at(queued[0]!.task_id) <= at(queued[1]!.task_id), "they ran in the order they were admitted");
  const resumed = sys.logsOf(sys.core, '"event":"resumed"');
  t.is(resumed.length, 1, "the generation was taken back from the sidecar, not run again");
});

test("past the grace the open streams end with a typed, retriable CORE_UNAVAILABLE error, native and OpenAI alike", async (t) => {
  const sys = await TestSystem.start({
    workers: [{ replica: "w", slots: 2, tokensPerSecond: 40 }],
    edgeFlags: { "core-loss-grace-ms": "800" },
  });
  t.teardown(() => sys.stop());
  const body = taskBody({ max_tokens: 1000 });
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
  const path = `/v1/tasks/${body.task_id}/stream`;
  const s = await stream(sys.edgeUrl, path);
  const chat = await fetch(`${sys.edgeUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "mock:tiny", messages: [{ role: "user", content: "hi" }], max_tokens: 1000, stream: true }),
  });
  const chatReader = chat.body!.getReader();
  const decoder = new TextDecoder();
  let chatText = "";
  const chatDone = (async () => {
    for (let r = await chatReader.read(); !r.done; r = await chatReader.read()) chatText += decoder.decode(r.value, { stream: true });
  })();
  await s.waitFor(2, "token");
  while (!chatText.includes('"content":"') || chatText.split("data:").length < 4) await new Promise((r) => setTimeout(r, 20));

  await sys.killCore();
  await s.done;
  await chatDone;
  const last = s.events.at(-1)!;
  t.is(last.event, "error", "a typed error frame, not a bare close");
  t.like(last.data, { code: "CORE_UNAVAILABLE", retriable: true });
  t.is(last.id, undefined, "it has no id, so a reconnect resumes after the last real frame");
  t.false(s.events.some((e) => e.event === "end"));
  assertStreamConforms(t, path, s);

  const lastData = chatText.trim().split("\n\n").at(-1)!;
  t.false(chatText.includes("[DONE]"));
  t.like(JSON.parse(lastData.replace(/^data: /, "")), { error: { code: "CORE_UNAVAILABLE" } });
  t.deepEqual(checkResponse("POST", "/v1/chat/completions", { status: chat.status, headers: chat.headers, body: chatText }), []);
});

test("a SIGSTOP of core longer than the grace ends the open stream with CORE_UNAVAILABLE, not a silent close", async (t) => {
  const sys = await TestSystem.start({
    workers: [{ replica: "w", slots: 1, tokensPerSecond: 40 }],
    edgeFlags: { "core-loss-grace-ms": "1000" },
  });
  t.teardown(async () => {
    sys.resumeCore();
    await sys.stop();
  });
  const body = taskBody({ max_tokens: 2000 });
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
  const path = `/v1/tasks/${body.task_id}/stream`;
  const s = await stream(sys.edgeUrl, path);
  await s.waitFor(2, "token");
  sys.pauseCore();
  // Up to 20 s of silence: the edge notices through its keepalive, holds the stream for the grace, then says why it ends.
  const stalled = setTimeout(() => sys.resumeCore(), 20_000);
  await s.done;
  clearTimeout(stalled);
  sys.resumeCore();
  const last = s.events.at(-1)!;
  t.is(last.event, "error");
  t.like(last.data, { code: "CORE_UNAVAILABLE", retriable: true });
  assertStreamConforms(t, path, s);
});

test("a running task whose sidecar died with core ends CORE_UNAVAILABLE once the sidecar registers again without it; the queue runs on", async (t) => {
  const sys = await TestSystem.start({ workers: [{ replica: "w", slots: 1, tokensPerSecond: 40 }] });
  t.teardown(() => sys.stop());
  const running = taskBody({ max_tokens: 1000 });
  const queued = taskBody({ max_tokens: 3 });
  for (const body of [running, queued]) await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
  const path = `/v1/tasks/${running.task_id}/stream`;
  const s = await stream(sys.edgeUrl, path);
  await s.waitFor(2, "token");

  await Promise.all([sys.killWorker("w"), sys.killCore()]);
  await sys.restartCore();
  await sys.restartWorker("w");
  await s.done;
  const last = s.events.at(-1)!;
  t.is(last.event, "error");
  t.like(last.data, { code: "CORE_UNAVAILABLE", retriable: true });
  t.regex(last.data.message as string, /registered again without it/);
  t.truthy(last.id, "this one is core's own frame of the task, with an id");
  assertStreamConforms(t, path, s);

  const q = await stream(sys.edgeUrl, `/v1/tasks/${queued.task_id}/stream`);
  await q.done;
  t.is(q.events.at(-1)!.event, "end");
  t.is(tokenIndices(q.events).length, 3);
});
