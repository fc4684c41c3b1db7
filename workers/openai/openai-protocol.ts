// The OpenAI-compatible wire format (/v1/completions, /v1/chat/completions,
// /v1/models) as pure functions, shared by the `openai` adapter and vLLM,
// whose server speaks the same protocol. No I/O here: openai-stream.ts drives it.
import { StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import type { SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import { wireMessages } from "../engine/sampling-support.js";
import { samplingFields, type OpenAiDialect } from "./openai-sampling.js";

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
 * The streaming request for one task. A chat (`messages`) goes to the chat
 * endpoint, which renders it with the model's own template, whatever
 * `preferred` says; so does a task that sends `inputs`: each input is one
 * user message, which the completions API cannot express (a prompt list
 * there means a batch). Sampling goes along in `dialect`'s names
 * (openai-sampling.ts).
 */
export function openAiRequest(
  request: SubmitRequest,
  model: string,
  preferred: OpenAiApi,
  dialect: OpenAiDialect = "openai",
): OpenAiRequest {
  const chat = request.messages.length > 0;
  const api: OpenAiApi = chat || request.inputs.length > 0 ? "chat" : preferred;
  const body: Record<string, unknown> = { model };
  if (chat) {
    body.messages = wireMessages(request.messages);
  } else if (api === "chat") {
    const contents = request.inputs.length > 0 ? request.inputs : [request.prompt];
    body.messages = contents.map((content) => ({ role: "user", content }));
  } else {
    body.prompt = request.prompt;
  }
  Object.assign(body, samplingFields(request.sampling, dialect));
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
      /**
       * vLLM's `stop_reason` beside finish_reason "stop": true when it names
       * the stop string (or token) that matched, false when null (the EOS);
       * absent when the server does not say (OpenAI).
       */
      matchedStop?: boolean;
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
    if (event.finishReason !== undefined && "stop_reason" in choice) event.matchedStop = choice.stop_reason !== null;
  }
  if (isObject(json.usage)) {
    const usage: Usage = {};
    if (isCount(json.usage.prompt_tokens)) usage.promptTokens = json.usage.prompt_tokens;
    if (isCount(json.usage.completion_tokens)) usage.completionTokens = json.usage.completion_tokens;
    event.usage = usage;
  }
  return event;
}

/**
 * A finish_reason as a StopReason. OpenAI folds a matched stop string and
 * the model's own end into "stop"; when the task sent stop strings
 * (`stopsSent`) and the server does not tell which (`matchedStop`, vLLM's
 * stop_reason), "stop" counts as the task's stop. TGI's Messages API says
 * "stop_sequence" for a match and "stop" only for the end of sequence, so
 * its caller passes `stopsSent` false.
 */
export function stopReasonOf(finishReason: string | undefined, stopsSent = false, matchedStop?: boolean): StopReason {
  if (finishReason === "length") return StopReason.STOP_REASON_MAX_TOKENS;
  if (finishReason === "stop_sequence") return StopReason.STOP_REASON_STOP;
  if (finishReason === "stop" && stopsSent && matchedStop !== false) return StopReason.STOP_REASON_STOP;
  return StopReason.STOP_REASON_EOS;
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
