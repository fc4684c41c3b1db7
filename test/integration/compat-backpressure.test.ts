import test from "ava";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI, { APIUserAbortError } from "openai";
import { api, stream, taskBody } from "../support/http.js";
import { RecordingFetch } from "../support/sdk-fetch.js";
import { TestSystem } from "../support/system.js";

// The queue's backpressure and a client's abort, as the official SDKs meet
// them: a full queue's 429 that the SDK retries after retry-after-ms until it
// gets in, and an aborted request that cancels its task on the sidecar as a
// closed native stream does.

const until = async <T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> => {
  for (let i = 0; i < 400; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
};

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({
    // One slot and a queue of one: a third task finds the queue full.
    coreFlags: { "queue-capacity": "1", "disconnect-grace-ms": "0" },
    workers: [{ pool: "default", replica: "slow-1", slots: 1, tokensPerSecond: 40 }],
  });
});
test.after.always(() => sys?.stop());

const openai = (recorder: RecordingFetch, maxRetries = 0, headers: Record<string, string> = {}) =>
  new OpenAI({ baseURL: `${sys.edgeUrl}/v1`, apiKey: "k", fetch: recorder.fetch, maxRetries, defaultHeaders: headers });
const chat = [{ role: "user" as const, content: "Tell me about llamas" }];

/** The last canceled-or-finished state of a task, from its native stream. */
async function endOf(taskId: string): Promise<Record<string, unknown>> {
  const s = await stream(sys.edgeUrl, `/v1/tasks/${taskId}/stream`);
  await s.done;
  return s.events.at(-1)!.data;
}

/** The sidecar's generation_end line for a task, once it has one. */
const generationEnd = (taskId: string) =>
  until(`generation_end of ${taskId}`, () =>
    sys.logsOf(sys.worker("slow-1").proc, "generation_end").find((l) => l.job_id === taskId || String(l.msg).includes(taskId)),
  );

test.serial("a full queue's 429 carries retry-after-ms; the SDK waits that long, retries and gets in", async (t) => {
  // One task runs, one waits: the queue is full for three seconds, long enough for the SDK's first try even on a loaded machine.
  for (let i = 0; i < 2; i++) {
    t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 120 }) })).status, 202);
  }
  const recorder = new RecordingFetch();
  const answer = await openai(recorder, 10).chat.completions.create({ model: "mock:tiny", messages: chat, max_tokens: 4 });
  t.is(answer.choices[0]!.finish_reason, "length");
  const attempts = recorder.on("/v1/chat/completions");
  t.true(attempts.length >= 2, `the SDK retried (${attempts.map((a) => a.status).join(", ")})`);
  t.is(attempts.at(-1)!.status, 200);
  for (const [i, refused] of attempts.slice(0, -1).entries()) {
    t.is(refused.status, 429);
    t.is(refused.headers.get("x-should-retry"), "true");
    const waitMs = Number(refused.headers.get("retry-after-ms"));
    t.true(waitMs > 0);
    t.is(refused.headers.get("retry-after"), String(Math.max(1, Math.ceil(waitMs / 1000))));
    // The SDK slept retry-after-ms between receiving the 429 and the next answer.
    t.true(attempts[i + 1]!.at - refused.at >= waitMs - 5, `waited ${attempts[i + 1]!.at - refused.at} ms of ${waitMs}`);
  }
  await recorder.conforms(t);
});

test.serial("the same 429 reaches Anthropic's SDK as a RateLimitError when it may not retry", async (t) => {
  for (let i = 0; i < 2; i++) {
    t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 40 }) })).status, 202);
  }
  const recorder = new RecordingFetch();
  const anthropic = new Anthropic({ baseURL: sys.edgeUrl, apiKey: "k", fetch: recorder.fetch, maxRetries: 0 });
  const refused = await t.throwsAsync(anthropic.messages.create({ model: "mock:tiny", max_tokens: 4, messages: chat }), {
    instanceOf: Anthropic.RateLimitError,
  });
  t.regex(refused.message, /queue of pool default is full/);
  t.is((refused.error as { error: { type: string } }).error.type, "rate_limit_error");
  await recorder.conforms(t);
  // Let the queue drain before the next test.
  await until("an idle pool", async () => {
    const h = await api(t, sys.edgeUrl, "GET", "/v1/pools/default/health");
    return h.json.metrics.queue_depth === 0 && h.json.metrics.slots_free === 1 ? true : undefined;
  });
});

test.serial("aborting a streamed chat cancels its task on the sidecar", async (t) => {
  const recorder = new RecordingFetch();
  const controller = new AbortController();
  const { data: chunks, response } = await openai(recorder)
    .chat.completions.create({ model: "mock:tiny", messages: chat, max_tokens: 2000, stream: true }, { signal: controller.signal })
    .withResponse();
  const taskId = response.headers.get("x-task-id")!;
  let received = 0;
  // On abort the SDK's stream simply ends.
  for await (const chunk of chunks) {
    if (chunk.choices[0]?.delta.content) received++;
    if (received === 3) controller.abort();
  }
  t.is(received, 3);
  // The sidecar's end first: reading the task's stream again at once would be a new watcher, which
  // within core's disconnect grace keeps the task (as it should for a client that reconnects).
  const end = await generationEnd(taskId);
  t.like(await endOf(taskId), { stop_reason: "canceled" });
  t.true(Number((await endOf(taskId)).tokens_out) < 2000);
  t.true(["client_cancelled", "cancel_rpc"].includes(String(end.reason)), `the sidecar stopped the generation (${String(end.reason)})`);
});

test.serial("aborting a non-streaming request cancels its task too", async (t) => {
  const recorder = new RecordingFetch();
  const controller = new AbortController();
  const correlation = `abort-${crypto.randomUUID()}`;
  const pending = openai(recorder, 0, { "X-Correlation-Id": correlation }).completions.create(
    { model: "mock:tiny", prompt: "Tell me about llamas", max_tokens: 2000 },
    { signal: controller.signal },
  );
  const submitted = await until("the task's admission", () =>
    sys.logsOf(sys.edge, "task_submitted").find((l) => l.correlation_id === correlation),
  );
  const taskId = String(submitted.job_id);
  await until("its first tokens", async () => {
    const h = await api(t, sys.edgeUrl, "GET", "/v1/pools/default/health");
    return h.json.metrics.tasks_running === 1 ? true : undefined;
  });
  controller.abort();
  await t.throwsAsync(pending, { instanceOf: APIUserAbortError });
  t.like(await endOf(taskId), { stop_reason: "canceled" });
  await generationEnd(taskId);
});
