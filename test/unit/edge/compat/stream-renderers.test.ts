import test from "ava";
import { Engine, ErrorCode, StopReason } from "../../../../contracts/gen/llama_orch/v1/common.js";
import type { TaskEvent } from "../../../../contracts/gen/llama_orch/v1/task.js";
import { AnthropicEventRenderer } from "../../../../edge/compat/anthropic-stream.js";
import { CHAT_CHUNKS, OpenAiChunkRenderer, TEXT_CHUNKS } from "../../../../edge/compat/openai-stream.js";
import { checkResponse } from "../../../support/openapi-check.js";
import { parseSse } from "../../../support/sse-parse.js";

const TASK = "6f1c2a0e-7d4b-4e58-9b0a-2f3c4d5e6a7b";
const SSE = { "Content-Type": "text/event-stream; charset=utf-8", "X-Correlation-Id": "c", "X-Task-Id": TASK };

const started: TaskEvent = { seq: 1, kind: { $case: "started", started: { queuePosition: 0, predictedStartMs: 0 } } };
const tokens = (seq: number, ...texts: string[]): TaskEvent => ({ seq, kind: { $case: "tokens", tokens: { firstIndex: seq - 2, texts } } });
const end = (stopReason: StopReason): TaskEvent => ({
  seq: 9,
  kind: { $case: "end", end: { tokensOut: 3, decodeTimeMs: 5, tokensIn: 7, stopReason, traceArtifactId: "" } },
});
const failed: TaskEvent = {
  seq: 9,
  kind: {
    $case: "error",
    error: {
      code: ErrorCode.ERROR_CODE_WORKER_RESET,
      message: "the replica went away",
      engine: Engine.ENGINE_LLAMACPP,
      retriable: false,
      traceArtifactId: "",
    },
  },
};

const datas = (body: string) => parseSse(body).map((f) => f.data.join("\n"));

test("OpenAI chat chunks: role first, one chunk per batch (none for held-back bytes), finish_reason, usage, [DONE]", (t) => {
  const r = new OpenAiChunkRenderer(CHAT_CHUNKS, { id: `chatcmpl-${TASK}`, taskId: TASK, model: "m", created: 1 }, true);
  const body = r.render([started]) + r.render([tokens(2, "Hel", "lo"), tokens(4, "")]) + r.render([end(StopReason.STOP_REASON_STOP)]);
  t.deepEqual(checkResponse("POST", "/v1/chat/completions", { status: 200, headers: SSE, body }), []);
  const frames = datas(body);
  t.is(frames.at(-1), "[DONE]");
  const chunks = frames
    .slice(0, -1)
    .map((d) => JSON.parse(d) as { choices: { delta: object; finish_reason: string | null }[]; usage: unknown });
  t.deepEqual(
    chunks.map((c) => [c.choices[0]?.delta, c.choices[0]?.finish_reason]),
    [
      [{ role: "assistant", content: "" }, null],
      [{ content: "Hello" }, null],
      [{}, "stop"],
      [undefined, undefined],
    ],
  );
  t.deepEqual(chunks.at(-1)!.usage, { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
});

test("OpenAI streams end on an error frame, without [DONE], when the task fails or is cancelled by someone else", (t) => {
  for (const last of [failed, end(StopReason.STOP_REASON_CANCELED)]) {
    const r = new OpenAiChunkRenderer(TEXT_CHUNKS, { id: `cmpl-${TASK}`, taskId: TASK, model: "m", created: 1 }, false);
    const body = r.render([started, tokens(2, "a")]) + r.render([last]);
    t.deepEqual(checkResponse("POST", "/v1/completions", { status: 200, headers: SSE, body }), []);
    const error = JSON.parse(datas(body).at(-1)!) as { error: { code: string } };
    t.is(error.error.code, last === failed ? "WORKER_RESET" : "CANCELED");
  }
});

test("Anthropic events: message_start, block start, ping, deltas, block stop, message_delta with the totals, message_stop", (t) => {
  const r = new AnthropicEventRenderer({ id: `msg_${TASK}`, taskId: TASK, model: "m", stopSequence: () => "\n\n" });
  const body = r.render([started, tokens(2, "Hi")]) + r.render([end(StopReason.STOP_REASON_STOP)]);
  t.deepEqual(checkResponse("POST", "/v1/messages", { status: 200, headers: SSE, body }), []);
  t.deepEqual(
    parseSse(body).map((f) => f.event),
    ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_stop", "message_delta", "message_stop"],
  );
  const delta = JSON.parse(datas(body)[5]!) as Record<string, unknown>;
  t.deepEqual(delta, {
    type: "message_delta",
    delta: { stop_reason: "stop_sequence", stop_sequence: "\n\n" },
    usage: { input_tokens: 7, output_tokens: 3 },
  });
  const failing = new AnthropicEventRenderer({ id: `msg_${TASK}`, taskId: TASK, model: "m", stopSequence: () => null });
  const failure = failing.render([started, failed]);
  t.deepEqual(checkResponse("POST", "/v1/messages", { status: 200, headers: SSE, body: failure }), []);
  t.is(parseSse(failure).at(-1)!.event, "error");
});

test("the checker holds the dialects to their rules: no ids, [DONE] last, known event names", (t) => {
  const chunk = `{"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"m","choices":[]}`;
  const check = (body: string) => checkResponse("POST", "/v1/chat/completions", { status: 200, headers: SSE, body });
  t.deepEqual(check(`data: ${chunk}\n\ndata: [DONE]\n\n`), []);
  t.regex(check(`id: 1\ndata: ${chunk}\n\ndata: [DONE]\n\n`)[0]!, /sends no ids/);
  t.regex(check(`data: [DONE]\n\ndata: ${chunk}\n\n`).join(), /\[DONE\] must be the last frame/);
  t.regex(check(`data: ${chunk}\n\n`)[0]!, /must end with \[DONE\] or an error frame/);
  const anthropic = checkResponse("POST", "/v1/messages", { status: 200, headers: SSE, body: `event: thinking\ndata: {}\n\n` });
  t.regex(anthropic[0]!, /unknown event name/);
});
