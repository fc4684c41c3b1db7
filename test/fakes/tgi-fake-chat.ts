// The TGI fake's Messages API (POST /v1/chat/completions with stream: true).
// Sources (huggingface/text-generation-inference): router/src/lib.rs
// ChatRequest (messages, max_tokens defaulting to 100, seed, temperature,
// top_p, frequency_penalty, stop, response_format, stream_options) and its
// try_into_generate, which renders the chat template and runs the same
// generation as /generate_stream; router/src/chat.rs
// create_event_from_stream_token: one `chat.completion.chunk` per token with
// `delta {role: "assistant", content}` (content "" for a special token),
// `finish_reason` on the last token's chunk as FinishReason::format(true):
// "stop" for the end-of-sequence token, "length", "stop_sequence"; with
// stream_options.include_usage a chunk with `choices: []` and `usage`; then
// `data:[DONE]`. The template is not the model's here: the prompt is counted
// from a ChatML rendering of the messages.
import type { TgiFakeBehaviour } from "./tgi-fake.js";
import { stopsOf } from "./fake-stops.js";

export const CHAT_PATH = "/v1/chat/completions";

/** A token the fake streams: listed text, or the special end-of-sequence token. */
export interface PlannedToken {
  text: string;
  special: boolean;
}

/** One generation, whichever route asked for it. */
export interface StreamRequest {
  /** The prompt (for a chat: its rendering); empty is a validation error. */
  inputs: string;
  maxNew: unknown;
  seed: number | null;
  details: boolean;
  stops: string[];
  /** Set for the Messages API: its chunks instead of StreamResponse frames. */
  chat?: { includeUsage: boolean };
}

interface ChatBody {
  messages?: unknown;
  max_tokens?: unknown;
  seed?: unknown;
  stop?: unknown;
  stream_options?: { include_usage?: unknown };
}

/** The generation a chat request asks for. */
export function chatStream(body: unknown): StreamRequest {
  const b = (body ?? {}) as ChatBody;
  const messages = Array.isArray(b.messages) ? (b.messages as { role?: unknown; content?: unknown }[]) : [];
  const inputs = messages.map((m) => `<|im_start|>${String(m.role)}\n${String(m.content)}<|im_end|>\n`).join("");
  return {
    inputs: inputs === "" ? "" : `${inputs}<|im_start|>assistant\n`,
    maxNew: b.max_tokens ?? 100,
    seed: typeof b.seed === "number" ? b.seed : null,
    details: true,
    stops: stopsOf(b.stop),
    chat: { includeUsage: b.stream_options?.include_usage === true },
  };
}

/** One token's chunk; `finishReason` is TGI's FinishReason on the last one. */
export function chatChunk(token: PlannedToken, finishReason: string | null, b: TgiFakeBehaviour): unknown {
  const finish = finishReason === "eos_token" ? "stop" : finishReason;
  return {
    object: "chat.completion.chunk",
    id: "",
    created: Math.floor(Date.now() / 1000),
    model: modelOf(b),
    system_fingerprint: "2.4.1-native",
    choices: [{ index: 0, delta: { role: "assistant", content: token.special ? "" : token.text }, logprobs: null, finish_reason: finish }],
    usage: null,
  };
}

export function chatUsage(promptTokens: number, completionTokens: number, b: TgiFakeBehaviour): unknown {
  return {
    object: "chat.completion.chunk",
    id: "",
    created: Math.floor(Date.now() / 1000),
    model: modelOf(b),
    system_fingerprint: "2.4.1-native",
    choices: [],
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
  };
}

/** Prompt tokens as the fake counts them: whitespace-separated words, at least one. */
export function wordsOf(text: string): number {
  return Math.max(1, text.split(/\s+/).filter(Boolean).length);
}

function modelOf(b: TgiFakeBehaviour): string {
  const id = b.info.model_id;
  return typeof id === "string" ? id : "fake-org/tiny-llama";
}
