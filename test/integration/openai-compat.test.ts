import test, { type ExecutionContext } from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI, { BadRequestError, NotFoundError } from "openai";
import { uuidV5 } from "../../edge/compat/queue-controls.js";
import { api, stream, taskBody } from "../support/http.js";
import { RecordingFetch } from "../support/sdk-fetch.js";
import { TestSystem } from "../support/system.js";

// The official openai SDK, unchanged, against real core, edge and mock
// sidecars: every request it makes is a native task underneath, so the text
// it gets must be the text POST /v1/tasks gives for the same task.

const configDir = mkdtempSync(join(tmpdir(), "llorch-compat-"));
const edgeConfig = join(configDir, "edge.yaml");
writeFileSync(edgeConfig, "edge:\n  models:\n    tiny-chat: { engine: llamacpp, model_ref: 'mock:tiny', ctx: 4096 }\n");

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({
    edgeFlags: { config: edgeConfig },
    coreFlags: { "metrics-port": "0" },
    workers: [{ pool: "default", replica: "m1", slots: 4 }],
  });
});
test.after.always(async () => {
  await sys?.stop();
  rmSync(configDir, { recursive: true, force: true });
});

function client(recorder: RecordingFetch, options: { maxRetries?: number; headers?: Record<string, string> } = {}): OpenAI {
  return new OpenAI({
    baseURL: `${sys.edgeUrl}/v1`,
    apiKey: "unused-without-an-edge-key",
    fetch: recorder.fetch,
    maxRetries: options.maxRetries ?? 0,
    defaultHeaders: options.headers,
  });
}

/** What the native API streams for the same task: the text every compatible answer must equal. */
async function nativeText(
  t: ExecutionContext,
  overrides: Record<string, unknown>,
): Promise<{ text: string; end: Record<string, unknown> }> {
  const body = taskBody({ model_ref: "mock:tiny", ctx: 4096, ...overrides });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${String(body["task_id"])}/stream`);
  await s.done;
  const text = s.events
    .filter((e) => e.event === "token")
    .map((e) => e.data.t as string)
    .join("");
  return { text, end: s.events.at(-1)!.data };
}

const chat = [
  { role: "system" as const, content: "You are terse." },
  { role: "user" as const, content: "Tell me about llamas" },
];
const nativeChat = chat.map((m) => ({ role: m.role, content: m.content }));

test("models.list names the configured model and the served model_ref; retrieve and an unknown name", async (t) => {
  const recorder = new RecordingFetch();
  const openai = client(recorder);
  const ids = (await openai.models.list()).data.map((m) => m.id);
  t.deepEqual(ids, ["tiny-chat", "mock:tiny"]);
  const model = await openai.models.retrieve("tiny-chat");
  t.like(model, { id: "tiny-chat", object: "model", owned_by: "llama-orch" });
  t.like(await openai.models.retrieve("mock:tiny"), { id: "mock:tiny", engine: "llamacpp", ctx_max: 8192, workloads: ["completion"] });
  const missing = await t.throwsAsync(openai.models.retrieve("gpt-4o"), { instanceOf: NotFoundError });
  t.regex(missing.message, /model "gpt-4o" is not served here; available: tiny-chat, mock:tiny/);
  await recorder.conforms(t);
});

test("chat.completions.create: the native task's text, its usage, and ids that lead to the task", async (t) => {
  const recorder = new RecordingFetch();
  const { data, response } = await client(recorder)
    .chat.completions.create({ model: "tiny-chat", messages: chat, max_tokens: 12, seed: 7 })
    .withResponse();
  const native = await nativeText(t, { messages: nativeChat, max_tokens: 12, seed: 7, prompt: undefined });
  const taskId = response.headers.get("x-task-id")!;
  t.is(data.id, `chatcmpl-${taskId}`);
  t.is(data.object, "chat.completion");
  t.is(data.model, "tiny-chat");
  t.is(data.choices.length, 1);
  t.is(data.choices[0]!.message.content, native.text);
  t.is(data.choices[0]!.finish_reason, "length");
  t.deepEqual(data.usage, { prompt_tokens: native.end.tokens_in, completion_tokens: 12, total_tokens: Number(native.end.tokens_in) + 12 });
  // The task is a native one: its stream replays the same end.
  const replay = await stream(sys.edgeUrl, `/v1/tasks/${taskId}/stream`);
  await replay.done;
  t.like(replay.events.at(-1), { event: "end", data: { tokens_out: 12, stop_reason: "max_tokens" } });
  await recorder.conforms(t);
});

test("streamed chat: a role chunk, deltas that add up to the native text, finish_reason, usage, then the end", async (t) => {
  const recorder = new RecordingFetch();
  const chunks = await client(recorder).chat.completions.create({
    model: "tiny-chat",
    messages: chat,
    max_completion_tokens: 20,
    seed: 7,
    stream: true,
    stream_options: { include_usage: true },
  });
  const received = [];
  for await (const chunk of chunks) received.push(chunk);
  const native = await nativeText(t, { messages: nativeChat, max_tokens: 20, seed: 7, prompt: undefined });
  t.deepEqual(received[0]!.choices[0]!.delta, { role: "assistant", content: "" });
  const text = received.map((c) => c.choices[0]?.delta.content ?? "").join("");
  t.is(text, native.text);
  const withReason = received.filter((c) => c.choices[0]?.finish_reason);
  t.deepEqual(
    withReason.map((c) => c.choices[0]!.finish_reason),
    ["length"],
  );
  const last = received.at(-1)!;
  t.deepEqual(last.choices, []);
  t.deepEqual(last.usage, { prompt_tokens: native.end.tokens_in, completion_tokens: 20, total_tokens: Number(native.end.tokens_in) + 20 });
  t.true(received.slice(0, -1).every((c) => c.usage === null));
  t.true(new Set(received.map((c) => c.id)).size === 1 && received[0]!.id.startsWith("chatcmpl-"));
  await recorder.conforms(t);
});

test("completions.create, plain and streamed: the prompt as given, without a chat template", async (t) => {
  const recorder = new RecordingFetch();
  const openai = client(recorder);
  const native = await nativeText(t, { prompt: "Tell me about llamas", max_tokens: 10, seed: 3 });
  const plain = await openai.completions.create({ model: "mock:tiny", prompt: "Tell me about llamas", max_tokens: 10, seed: 3 });
  t.like(plain, { object: "text_completion", model: "mock:tiny" });
  t.is(plain.choices[0]!.text, native.text);
  t.is(plain.choices[0]!.finish_reason, "length");
  const streamed = await openai.completions.create({
    model: "mock:tiny",
    prompt: ["Tell me about llamas"],
    max_tokens: 10,
    seed: 3,
    stream: true,
  });
  let text = "";
  for await (const chunk of streamed) text += chunk.choices[0]?.text ?? "";
  t.is(text, native.text);
  await recorder.conforms(t);
});

test("sampling reaches the engine as the native sampling fields; a stop string ends the text with finish_reason stop", async (t) => {
  const recorder = new RecordingFetch();
  const openai = client(recorder);
  const sampled = { temperature: 0.5, top_p: 0.9, presence_penalty: 0.1, frequency_penalty: 0.2, logit_bias: { "42": 5 } };
  const answer = await openai.chat.completions.create({ model: "tiny-chat", messages: chat, max_tokens: 16, seed: 5, ...sampled });
  const native = await nativeText(t, { messages: nativeChat, max_tokens: 16, seed: 5, prompt: undefined, sampling: sampled });
  t.is(answer.choices[0]!.message.content, native.text);
  const unsampled = await nativeText(t, { messages: nativeChat, max_tokens: 16, seed: 5, prompt: undefined });
  t.not(native.text, unsampled.text, "the sampling parameters changed the mock's text");

  const words = native.text.trim().split(" ");
  const stop = ` ${words[3]!}`;
  const stopped = await openai.chat.completions.create({ model: "tiny-chat", messages: chat, max_tokens: 16, seed: 5, ...sampled, stop });
  t.is(stopped.choices[0]!.finish_reason, "stop");
  t.is(stopped.choices[0]!.message.content, native.text.slice(0, native.text.indexOf(stop)));
  await recorder.conforms(t);
});

test("what cannot be honoured is a BadRequestError naming the field, with our message", async (t) => {
  const recorder = new RecordingFetch();
  const openai = client(recorder);
  const base = { model: "tiny-chat", messages: chat, max_tokens: 4 };
  const n = await t.throwsAsync(openai.chat.completions.create({ ...base, n: 2 }), { instanceOf: BadRequestError });
  t.regex(n.message, /only n: 1 is supported/);
  t.like(n, { status: 400, param: "n", code: "INVALID_PARAMS", type: "invalid_request_error" });
  const tools = await t.throwsAsync(
    openai.chat.completions.create({ ...base, tools: [{ type: "function", function: { name: "f", parameters: {} } }] }),
    { instanceOf: BadRequestError },
  );
  t.regex(tools.message, /tools is not supported .*tool and function calling is not supported/);
  // The mock has no grammar support: core's feature check refuses the schema, named as the OpenAI field.
  const schema = await t.throwsAsync(
    openai.chat.completions.create({
      ...base,
      response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object" } } },
    }),
    { instanceOf: BadRequestError },
  );
  t.like(schema, { param: "response_format", code: "INVALID_PARAMS" });
  t.regex(schema.message, /honours sampling\.json_schema|json_schema/);
  const tooLong = await t.throwsAsync(openai.chat.completions.create({ ...base, max_tokens: 5000 }), { instanceOf: BadRequestError });
  t.like(tooLong, { param: "max_tokens" });
  t.regex(tooLong.message, /max_tokens 5000 does not fit in ctx 4096/);
  const unknown = await t.throwsAsync(openai.chat.completions.create({ ...base, model: "nope" }), { instanceOf: NotFoundError });
  t.like(unknown, { param: "model", code: "NOT_FOUND" });
  await recorder.conforms(t);
});

test.serial("queue controls: X-Priority and service_tier pick the queue, user a stable session, X-Session-Id a given one", async (t) => {
  const recorder = new RecordingFetch();
  const openai = client(recorder);
  const user = `user-${crypto.randomUUID()}`;
  for (let i = 0; i < 2; i++) await openai.chat.completions.create({ model: "tiny-chat", messages: chat, max_tokens: 2, user });
  // Without keys on the edge a bearer token names no one: every caller is "localhost", told apart by `user`.
  const derived = uuidV5("3f9d6c1e-5a7b-4e2d-9c8f-0b1a2d3e4f56", `localhost\n${user}`);
  const session = await api(t, sys.edgeUrl, "GET", `/v1/sessions/${derived}`);
  t.is(session.status, 200, "both turns went to the session derived from user");
  t.is(session.json.turns, 2);

  const given = crypto.randomUUID();
  const batchBefore = await enqueued("batch");
  const pinned = client(recorder, { headers: { "X-Session-Id": given, "X-Priority": "batch", "X-Deadline-Ms": "60000" } });
  await pinned.chat.completions.create({ model: "tiny-chat", messages: chat, max_tokens: 2 });
  t.is((await api(t, sys.edgeUrl, "GET", `/v1/sessions/${given}`)).json.turns, 1);
  await openai.chat.completions.create({ model: "tiny-chat", messages: chat, max_tokens: 2, service_tier: "flex" });
  t.is(await enqueued("batch"), batchBefore + 2, "X-Priority: batch and service_tier: flex both queued as batch");
  const interactiveBefore = await enqueued("interactive");
  await openai.chat.completions.create({ model: "tiny-chat", messages: chat, max_tokens: 2, service_tier: "default" });
  t.is(await enqueued("interactive"), interactiveBefore + 1);

  const bad = client(recorder, { headers: { "X-Priority": "urgent" } });
  const refused = await t.throwsAsync(bad.chat.completions.create({ model: "tiny-chat", messages: chat, max_tokens: 2 }), {
    instanceOf: BadRequestError,
  });
  t.like(refused, { param: "X-Priority" });
  await recorder.conforms(t);
});

/** Core's count of tasks enqueued at a priority (tasks_enqueued_total, summed over its other labels). */
async function enqueued(priority: string): Promise<number> {
  const text = await (await fetch(`http://${sys.coreMetricsAddress}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith("tasks_enqueued_total{") && l.includes(`priority="${priority}"`))
    .reduce((n, l) => n + Number(l.split(" ").at(-1)), 0);
}
