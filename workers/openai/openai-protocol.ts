// The OpenAI-compatible wire format (/v1/completions, /v1/chat/completions,
// /v1/models) as pure functions, shared by the `openai` adapter and vLLM,
// whose server speaks the same protocol. No I/O here: openai-stream.ts drives it.
import { StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import type { SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";

/** Which OpenAI endpoint generates: legacy text completions or chat completions. */
export type OpenAiApi = "completions" | "chat";

export const COMPLETIONS_PATH = "/v1/completions";
export const CHAT_PATH = "/v1/chat/completions";
export const MODELS_PATH = "/v1/models";

export interface OpenAiRequest {
  api: OpenAiApi;
  path: string;
  body: Record<string, unknown>;
}

/**
 * The streaming request for one task. A task that sends `inputs` goes to
 * chat whatever `preferred` says: each input is one user message, which the
 * completions API cannot express (a prompt list there means a batch).
 */
export function openAiRequest(request: SubmitRequest, model: string, preferred: OpenAiApi): OpenAiRequest {
  const api: OpenAiApi = request.inputs.length > 0 ? "chat" : preferred;
  const body: Record<string, unknown> = { model };
  if (api === "chat") {
    const contents = request.inputs.length > 0 ? request.inputs : [request.prompt];
    body.messages = contents.map((content) => ({ role: "user", content }));
  } else {
    body.prompt = request.prompt;
  }
  // 0 means "no limit given": the engine's own default applies rather than a zero-token answer.
  if (request.maxTokens > 0) body.max_tokens = request.maxTokens;
  body.stream = true;
  // Without this the engine never reports usage in a stream, and tokens_in stays unknown.
  body.stream_options = { include_usage: true };
  if (request.seed !== undefined) body.seed = request.seed;
  return { api, path: api === "chat" ? CHAT_PATH : COMPLETIONS_PATH, body };
}

export interface Usage {
  promptTokens?: number;
  completionTokens?: number;
}

/** What one `data:` frame of a stream says, whichever API produced it. */
export type StreamEvent =
  | { type: "done" }
  /** `{"error": {...}}` inside a 200 stream: the engine failed mid-generation. */
  | { type: "error"; message: string }
  | {
      type: "chunk";
      /** The generated text of choice 0; "" for role-only or usage-only chunks. */
      text: string;
      /** Set on the chunk that ends choice 0. */
      finishReason?: string;
      usage?: Usage;
    };

/**
 * Parses one SSE `data:` payload. Throws on a payload that is not JSON or not
 * an object, which the caller reports as an engine error: a server that
 * breaks the framing cannot be trusted for the rest of the stream.
 */
export function parseStreamData(data: string): StreamEvent {
  if (data.trim() === "[DONE]") return { type: "done" };
  const json: unknown = JSON.parse(data);
  if (!isObject(json)) throw new SyntaxError("stream frame is not a JSON object");
  if (json.error !== undefined && json.error !== null) return { type: "error", message: errorText(json.error) };
  // vLLM 0.6 also sent bare `{"object":"error","message":...}` objects in streams.
  if (json.object === "error") return { type: "error", message: typeof json.message === "string" ? json.message : "engine error" };
  const event: StreamEvent = { type: "chunk", text: "" };
  const choice: unknown = Array.isArray(json.choices) ? json.choices.find((c) => isObject(c) && (c.index ?? 0) === 0) : undefined;
  if (isObject(choice)) {
    const delta = isObject(choice.delta) ? choice.delta : undefined;
    const text = delta ? delta.content : choice.text;
    if (typeof text === "string") event.text = text;
    if (typeof choice.finish_reason === "string" && choice.finish_reason !== "") event.finishReason = choice.finish_reason;
  }
  if (isObject(json.usage)) {
    const usage: Usage = {};
    if (isCount(json.usage.prompt_tokens)) usage.promptTokens = json.usage.prompt_tokens;
    if (isCount(json.usage.completion_tokens)) usage.completionTokens = json.usage.completion_tokens;
    event.usage = usage;
  }
  return event;
}

/** OpenAI's finish_reason as a StopReason. We send no stop strings, so "stop" can only be the model's EOS. */
export function stopReasonOf(finishReason: string | undefined): StopReason {
  return finishReason === "length" ? StopReason.STOP_REASON_MAX_TOKENS : StopReason.STOP_REASON_EOS;
}

export interface ModelCard {
  id: string;
  /** vLLM's (and some other servers') context length for the model. */
  maxModelLen?: number;
}

/** The cards of a `GET /v1/models` body (`{"object":"list","data":[{id,...}]}`); throws on another shape. */
export function parseModelList(text: string): ModelCard[] {
  const json: unknown = JSON.parse(text);
  if (!isObject(json) || !Array.isArray(json.data)) throw new SyntaxError('model list without a "data" array');
  const cards: ModelCard[] = [];
  for (const entry of json.data) {
    if (!isObject(entry) || typeof entry.id !== "string") continue;
    const card: ModelCard = { id: entry.id };
    if (isCount(entry.max_model_len) && entry.max_model_len > 0) card.maxModelLen = entry.max_model_len;
    cards.push(card);
  }
  return cards;
}

/** The detail of an error object in a stream: its message, else its type or code, else the JSON itself. */
function errorText(error: unknown): string {
  if (typeof error === "string") return error;
  if (isObject(error)) {
    for (const key of ["message", "type", "code"] as const) {
      const value = error[key];
      if ((typeof value === "string" && value !== "") || typeof value === "number") return String(value);
    }
  }
  return JSON.stringify(error);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0;
}
