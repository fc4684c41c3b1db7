// A task's sampling parameters and chats as TGI takes them. Sources
// (huggingface/text-generation-inference): docs/openapi.json
// GenerateParameters of POST /generate_stream (temperature and top_k
// exclusive minimum 0, top_p in (0, 1], repetition_penalty,
// frequency_penalty, stop (at most max_stop_sequences, 4 by default),
// grammar {type: "json", value: <schema>}, do_sample); no min_p, no
// presence penalty, no logit bias. router/src/lib.rs ChatRequest of POST
// /v1/chat/completions (the Messages API, which renders the model's chat
// template): temperature (0: greedy), top_p, frequency_penalty, stop, seed,
// max_tokens, response_format (the same GrammarType); logit_bias is marked
// UNUSED, presence_penalty only becomes a repetition penalty of
// presence_penalty + 2, and there is no top_k or repetition_penalty.
// TGI sends a matched stop sequence as part of the text (its generated_text
// ends with it), so the adapter cuts it (engine/stop-matcher.ts).
import type { SamplingParams } from "../../contracts/gen/llama_orch/v1/common.js";
import type { SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import { jsonSchemaOf, wireMessages, type Honoured } from "../engine/sampling-support.js";

/** What /generate_stream honours; chats through the Messages API. */
export const TGI_HONOURED: Honoured = {
  engine: "TGI server",
  sampling: ["temperature", "top_p", "top_k", "repeat_penalty", "frequency_penalty", "stop", "json_schema"],
  chat: "chat-endpoint",
};

/** What a chat can carry: the Messages API has neither top_k nor a repetition penalty. */
export const TGI_CHAT_HONOURED: Honoured = {
  engine: "TGI chat endpoint (/v1/chat/completions)",
  sampling: ["temperature", "top_p", "frequency_penalty", "stop", "json_schema"],
  chat: "chat-endpoint",
};

export const TGI_CHAT_PATH = "/v1/chat/completions";

/** GenerateParameters fields a task's sampling sets. */
export interface TgiSampling {
  temperature?: number;
  top_p?: number;
  top_k?: number;
  repetition_penalty?: number;
  frequency_penalty?: number;
  stop?: string[];
  grammar?: { type: "json"; value: Record<string, unknown> };
  do_sample?: boolean;
}

/**
 * The GenerateParameters for `s`. TGI refuses values other engines take as
 * "no filtering", so those say it by leaving the field out: top_p 1 (TGI
 * before 2.x wanted < 1), top_k 0, and temperature 0, which means greedy
 * (do_sample false and no sampling filters, since TGI samples whenever a
 * filter is set). A positive temperature sets do_sample, without which TGI
 * would decode greedily at temperature 1.
 */
export function tgiSampling(s: SamplingParams | undefined): TgiSampling {
  if (!s) return {};
  const out: TgiSampling = {};
  const greedy = s.temperature === 0;
  if (greedy) out.do_sample = false;
  else if (s.temperature !== undefined) Object.assign(out, { temperature: s.temperature, do_sample: true });
  if (!greedy && s.topP !== undefined && s.topP < 1) out.top_p = s.topP;
  if (!greedy && s.topK !== undefined && s.topK > 0) out.top_k = s.topK;
  if (s.repeatPenalty !== undefined) out.repetition_penalty = s.repeatPenalty;
  if (s.frequencyPenalty !== undefined) out.frequency_penalty = s.frequencyPenalty;
  if (s.stop.length > 0) out.stop = [...s.stop];
  const schema = jsonSchemaOf(s);
  if (schema) out.grammar = { type: "json", value: schema };
  return out;
}

/**
 * The Messages API request for a chat. `model` is "tgi": TGI takes any other
 * name as the id of a LoRA adapter to load.
 */
export function chatRequestBody(request: SubmitRequest): Record<string, unknown> {
  const body: Record<string, unknown> = { model: "tgi", messages: wireMessages(request.messages), stream: true };
  if (request.maxTokens > 0) body.max_tokens = request.maxTokens;
  body.stream_options = { include_usage: true };
  if (request.seed !== undefined && Number.isSafeInteger(request.seed) && request.seed >= 0) body.seed = request.seed;
  const s = request.sampling;
  if (s?.temperature !== undefined) body.temperature = s.temperature;
  if (s?.topP !== undefined && s.topP < 1) body.top_p = s.topP;
  if (s?.frequencyPenalty !== undefined) body.frequency_penalty = s.frequencyPenalty;
  if (s && s.stop.length > 0) body.stop = [...s.stop];
  const schema = jsonSchemaOf(s);
  if (schema) body.response_format = { type: "json", value: schema };
  return body;
}
