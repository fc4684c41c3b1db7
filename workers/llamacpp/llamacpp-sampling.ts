// A task's sampling parameters as llama.cpp's POST /completion takes them
// (ggml-org/llama.cpp tools/server/README.md, "POST /completion" options):
// the same names as ours but for `logit_bias`, which the server takes as
// [token id, bias] pairs, and `json_schema`, which it takes as the schema
// object and turns into a grammar itself. The server honours every field.
import type { SamplingParams } from "../../contracts/gen/llama_orch/v1/common.js";
import { jsonSchemaOf, logitBiasPairs, SAMPLING_FIELDS, type Honoured } from "../engine/sampling-support.js";

/**
 * Every field, and chats through the model's own template (POST
 * /apply-template, see llamacpp-chat.ts).
 */
export const LLAMACPP_HONOURED: Honoured = { engine: "llama.cpp server", sampling: SAMPLING_FIELDS, chat: "template" };

/** The /completion fields a task's sampling sets; unset ones are left out, so the server's defaults apply. */
export interface CompletionSampling {
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repeat_penalty?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  /** "These words will not be included in the completion"; a match ends the stream with stop_type "word". */
  stop?: string[];
  logit_bias?: [number, number][];
  json_schema?: Record<string, unknown>;
}

/** The /completion fields for `s`; rejects INVALID_REQUEST (before anything is sent) for a schema or bias that is malformed. */
export function completionSampling(s: SamplingParams | undefined): CompletionSampling {
  if (!s) return {};
  const out: CompletionSampling = {};
  if (s.temperature !== undefined) out.temperature = s.temperature;
  if (s.topP !== undefined) out.top_p = s.topP;
  if (s.topK !== undefined) out.top_k = s.topK;
  if (s.minP !== undefined) out.min_p = s.minP;
  if (s.repeatPenalty !== undefined) out.repeat_penalty = s.repeatPenalty;
  if (s.presencePenalty !== undefined) out.presence_penalty = s.presencePenalty;
  if (s.frequencyPenalty !== undefined) out.frequency_penalty = s.frequencyPenalty;
  if (s.stop.length > 0) out.stop = [...s.stop];
  const bias = logitBiasPairs(s);
  if (bias.length > 0) out.logit_bias = bias;
  const schema = jsonSchemaOf(s);
  if (schema) out.json_schema = schema;
  return out;
}
