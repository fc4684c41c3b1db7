// A task's sampling parameters in the OpenAI protocol, for the two dialects
// spoken here. OpenAI's own API (platform.openai.com/docs/api-reference/chat
// /create) has temperature, top_p, presence_penalty, frequency_penalty,
// stop, logit_bias ({"<token id>": bias}) and, on chat only,
// response_format {type: "json_schema", json_schema: {name, schema, strict}};
// no top_k, min_p or repetition penalty. vLLM's OpenAI-compatible server
// (docs "OpenAI-Compatible Server", "Extra Parameters"; protocol.py
// CompletionRequest and ChatCompletionRequest) takes all of those on both
// endpoints plus top_k, min_p and repetition_penalty (our repeat_penalty).
// JSON schemas go to vLLM through response_format as well, which its
// /v1/completions takes too (protocol.py CompletionRequest: "Only
// {'type': 'json_object'}, {'type': 'json_schema'} ... is supported"),
// rather than guided_json, which vLLM 0.12 removed.
import type { SamplingParams } from "../../contracts/gen/llama_orch/v1/common.js";
import { jsonSchemaOf, logitBiasPairs, SAMPLING_FIELDS, type SamplingField } from "../engine/sampling-support.js";
import type { OpenAiApi } from "./openai-protocol.js";

export type OpenAiDialect = "openai" | "vllm";

const OPENAI_FIELDS: readonly SamplingField[] = ["temperature", "top_p", "presence_penalty", "frequency_penalty", "stop", "logit_bias"];

/** What a server of `dialect` honours when the adapter generates through `api`: JSON schemas need chat on OpenAI's own API. */
export function honouredFields(dialect: OpenAiDialect, api: OpenAiApi): readonly SamplingField[] {
  if (dialect === "vllm") return SAMPLING_FIELDS;
  return api === "chat" ? [...OPENAI_FIELDS, "json_schema"] : OPENAI_FIELDS;
}

/** The request fields for `s` in `dialect`; unset ones are left out. Rejects INVALID_REQUEST for a malformed schema or bias. */
export function samplingFields(s: SamplingParams | undefined, dialect: OpenAiDialect): Record<string, unknown> {
  if (!s) return {};
  const out: Record<string, unknown> = {};
  if (s.temperature !== undefined) out.temperature = s.temperature;
  if (s.topP !== undefined) out.top_p = s.topP;
  if (s.presencePenalty !== undefined) out.presence_penalty = s.presencePenalty;
  if (s.frequencyPenalty !== undefined) out.frequency_penalty = s.frequencyPenalty;
  if (s.stop.length > 0) out.stop = [...s.stop];
  const bias = logitBiasPairs(s);
  if (bias.length > 0) out.logit_bias = Object.fromEntries(bias.map(([token, value]) => [String(token), value]));
  if (dialect === "vllm") {
    if (s.topK !== undefined) out.top_k = s.topK;
    if (s.minP !== undefined) out.min_p = s.minP;
    if (s.repeatPenalty !== undefined) out.repetition_penalty = s.repeatPenalty;
  }
  const schema = jsonSchemaOf(s);
  // strict: OpenAI enforces the schema only then (and refuses one it cannot enforce); vLLM enforces it either way.
  if (schema) out.response_format = { type: "json_schema", json_schema: { name: "output", schema, strict: true } };
  return out;
}
