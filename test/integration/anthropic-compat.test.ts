import test, { type ExecutionContext } from "ava";
import Anthropic from "@anthropic-ai/sdk";
import { api, stream, taskBody } from "../support/http.js";
import { RecordingFetch } from "../support/sdk-fetch.js";
import { TestSystem } from "../support/system.js";

// The official @anthropic-ai/sdk, unchanged, against real processes with an
// API key (which the SDK sends as X-Api-Key): Messages plain and streamed,
// count_tokens, and errors as its typed errors.

const KEY = "compat-test-key";
let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({ apiKey: KEY, workers: [{ pool: "default", replica: "m1", slots: 4 }] });
});
test.after.always(() => sys?.stop());

const client = (recorder: RecordingFetch, apiKey = KEY) =>
  new Anthropic({ baseURL: sys.edgeUrl, apiKey, fetch: recorder.fetch, maxRetries: 0 });

const system = "You are terse.";
const messages = [{ role: "user" as const, content: "Tell me about llamas" }];
// The Messages API's sampling fields; the SDK's types no longer list them, the API still takes them.
const sampling = { temperature: 0.4, top_k: 20, top_p: 0.8 } as Record<string, number>;

/** The native task's text and end for the same chat (system first, as the edge renders it). */
async function nativeChat(t: ExecutionContext, maxTokens: number, extra: Record<string, unknown> = {}) {
  const body = taskBody({
    prompt: undefined,
    messages: [{ role: "system", content: system }, ...messages],
    max_tokens: maxTokens,
    seed: undefined,
    ...extra,
  });
  const auth = { Authorization: `Bearer ${KEY}` };
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body, headers: auth })).status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${String(body["task_id"])}/stream`, auth);
  await s.done;
  const text = s.events
    .filter((e) => e.event === "token")
    .map((e) => e.data.t as string)
    .join("");
  return { text, end: s.events.at(-1)!.data };
}

test("messages.create: the native task's text, stop_reason max_tokens and the engine's token counts", async (t) => {
  const recorder = new RecordingFetch();
  const { data, response } = await client(recorder)
    .messages.create({ model: "mock:tiny", max_tokens: 10, system, messages, ...sampling })
    .withResponse();
  const native = await nativeChat(t, 10, { sampling });
  t.is(data.id, `msg_${response.headers.get("x-task-id")}`);
  t.like(data, { type: "message", role: "assistant", model: "mock:tiny", stop_reason: "max_tokens", stop_sequence: null });
  t.deepEqual(
    data.content.map((b) => (b.type === "text" ? b.text : "")),
    [native.text],
  );
  t.like(data.usage, { input_tokens: native.end.tokens_in, output_tokens: 10 });
  await recorder.conforms(t);
});

test("a streamed message: the SDK's MessageStream assembles the same text from Anthropic's event sequence", async (t) => {
  const recorder = new RecordingFetch();
  const events: string[] = [];
  const s = client(recorder).messages.stream({ model: "mock:tiny", max_tokens: 24, system, messages });
  s.on("streamEvent", (e) => events.push(e.type));
  const message = await s.finalMessage();
  const native = await nativeChat(t, 24);
  t.is(message.content[0]?.type === "text" ? message.content[0].text : undefined, native.text);
  t.like(message, { stop_reason: "max_tokens" });
  t.like(message.usage, { input_tokens: native.end.tokens_in, output_tokens: 24 });
  t.deepEqual(events.slice(0, 2), ["message_start", "content_block_start"]);
  t.deepEqual(events.slice(-3), ["content_block_stop", "message_delta", "message_stop"]);
  t.true(events.filter((e) => e === "content_block_delta").length >= 1);
  await recorder.conforms(t);
});

test("a stop sequence ends the text with stop_reason stop_sequence and names the sequence", async (t) => {
  const recorder = new RecordingFetch();
  const anthropic = client(recorder);
  const native = await nativeChat(t, 20);
  const stop = ` ${native.text.trim().split(" ")[4]!}`;
  const message = await anthropic.messages.create({ model: "mock:tiny", max_tokens: 20, system, messages, stop_sequences: [stop] });
  t.like(message, { stop_reason: "stop_sequence", stop_sequence: stop });
  t.is(message.content[0]?.type === "text" ? message.content[0].text : undefined, native.text.slice(0, native.text.indexOf(stop)));
  await recorder.conforms(t);
});

test("count_tokens is the engine's count: what messages.create then reports as input_tokens", async (t) => {
  const recorder = new RecordingFetch();
  const anthropic = client(recorder);
  const counted = await anthropic.messages.countTokens({ model: "mock:tiny", system, messages });
  const message = await anthropic.messages.create({ model: "mock:tiny", max_tokens: 2, system, messages });
  t.true(counted.input_tokens > 0);
  t.is(counted.input_tokens, message.usage.input_tokens);
  await recorder.conforms(t);
});

test("errors are the SDK's typed errors with our message", async (t) => {
  const recorder = new RecordingFetch();
  const anthropic = client(recorder);
  const tools = await t.throwsAsync(
    anthropic.messages.create({
      model: "mock:tiny",
      max_tokens: 4,
      messages,
      tools: [{ name: "f", input_schema: { type: "object" } }],
    }),
    { instanceOf: Anthropic.BadRequestError },
  );
  t.regex(tools.message, /tools is not supported .*tool use is not supported/);
  t.is((tools.error as { error: { type: string } }).error.type, "invalid_request_error");
  await t.throwsAsync(anthropic.messages.create({ model: "claude-sonnet-5", max_tokens: 4, messages }), {
    instanceOf: Anthropic.NotFoundError,
    message: /model \\"claude-sonnet-5\\" is not served here; available: mock:tiny/,
  });
  await t.throwsAsync(
    anthropic.messages.create({ model: "mock:tiny", max_tokens: 4, messages: [...messages, { role: "assistant", content: "Llamas" }] }),
    {
      instanceOf: Anthropic.BadRequestError,
      message: /prefill/,
    },
  );
  await t.throwsAsync(client(recorder, "wrong-key").messages.create({ model: "mock:tiny", max_tokens: 4, messages }), {
    instanceOf: Anthropic.PermissionDeniedError,
    message: /the API key is not valid/,
  });
  await recorder.conforms(t);
});

test("the edge's key guards the compatible APIs, sent as a bearer token or as X-Api-Key", async (t) => {
  const body = { model: "mock:tiny", max_tokens: 2, messages };
  const missing = await api(t, sys.edgeUrl, "POST", "/v1/messages", { body });
  t.is(missing.status, 401);
  t.like(missing.json, { type: "error", error: { type: "authentication_error" } });
  const ways: Record<string, string>[] = [{ Authorization: `Bearer ${KEY}` }, { "X-Api-Key": KEY }];
  for (const headers of ways) {
    t.is((await api(t, sys.edgeUrl, "POST", "/v1/messages", { body, headers })).status, 200);
  }
});
