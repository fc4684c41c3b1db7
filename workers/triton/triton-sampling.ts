// Which of a task's sampling parameters a Triton model takes, from the
// inputs its metadata declares, and where each goes. Sources:
// - The TensorRT-LLM ensemble (NVIDIA/TensorRT-LLM triton_backend/all_models/
//   inflight_batcher_llm/ensemble/config.pbtxt): optional inputs
//   `temperature`, `top_k`, `top_p`, `repetition_penalty`,
//   `presence_penalty`, `frequency_penalty`, and for guided decoding
//   `guided_decoding_guide_type` ("json_schema") with
//   `guided_decoding_guide` (the schema as a string). Triton's generate
//   extension turns a request key that names an input into that tensor
//   (server docs/protocol/extension_generate.md), so each goes top level,
//   and only when the model declares it. No min_p input exists there; the
//   ensemble's `embedding_bias_words` bias words, not token ids, so
//   logit_bias is refused.
// - The vLLM backend (triton-inference-server/vllm_backend
//   src/utils/vllm_backend_utils.py): the `sampling_parameters` JSON string
//   is vLLM's SamplingParams (temperature, top_p, top_k, min_p,
//   repetition_penalty, presence_penalty, frequency_penalty), and
//   `guided_decoding` a JSON string of StructuredOutputsParams ({"json":
//   schema}). logit_bias is refused: the backend does not turn the JSON's
//   string keys into the token ids vLLM wants.
// Stop strings are matched by the adapter itself (engine/stop-matcher.ts)
// whatever the model: the ensemble's `stop_words` and vLLM's `stop` differ
// in whether the text keeps the stop string and in telling a match from the
// end of sequence, so the adapter cuts the stream where the string begins
// and closes it, which stops the model.
import type { SamplingParams } from "../../contracts/gen/llama_orch/v1/common.js";
import { jsonSchemaOf, type Honoured, type SamplingField } from "../engine/sampling-support.js";
import type { ModelMetadata } from "./triton-protocol.js";

/** Where a model takes each sampling field it takes, and how it takes a JSON schema. */
export interface TritonSampling {
  /** Field to the model's input (ensemble) or SamplingParams key (vLLM backend). */
  names: Partial<Record<SamplingField, string>>;
  /** "guide": the ensemble's guided_decoding_guide(_type) inputs; "vllm": sampling_parameters' guided_decoding. */
  json?: "guide" | "vllm";
}

const NUMERIC: readonly [SamplingField, string][] = [
  ["temperature", "temperature"],
  ["top_p", "top_p"],
  ["top_k", "top_k"],
  ["min_p", "min_p"],
  ["repeat_penalty", "repetition_penalty"],
  ["presence_penalty", "presence_penalty"],
  ["frequency_penalty", "frequency_penalty"],
];

/** Before the model's metadata is known: nothing. */
export const NO_SAMPLING: TritonSampling = { names: {} };

/** What a model with this metadata takes: its declared inputs, or everything through the vLLM backend's sampling_parameters. */
export function tritonSamplingOf(metadata: ModelMetadata): TritonSampling {
  const inputs = new Set((metadata.inputs ?? []).map((i) => i.name));
  if (inputs.has("sampling_parameters")) return { names: Object.fromEntries(NUMERIC), json: "vllm" };
  const names = Object.fromEntries(NUMERIC.filter(([, input]) => inputs.has(input)));
  const guided = inputs.has("guided_decoding_guide_type") && inputs.has("guided_decoding_guide");
  return guided ? { names, json: "guide" } : { names };
}

/** What the adapter honours with a model of `sampling`: its fields, and stop strings always; never a chat. */
export function tritonHonoured(sampling: TritonSampling): Honoured {
  const fields = Object.keys(sampling.names) as SamplingField[];
  return { engine: "Triton model", sampling: [...fields, "stop", ...(sampling.json ? (["json_schema"] as const) : [])] };
}

/** The fields `s` sets, under the model's names; with the JSON schema as the model takes it. */
export function tritonSamplingFields(s: SamplingParams | undefined, sampling: TritonSampling): Record<string, unknown> {
  if (!s) return {};
  const values: Partial<Record<SamplingField, number | undefined>> = {
    temperature: s.temperature,
    top_p: s.topP,
    top_k: s.topK,
    min_p: s.minP,
    repeat_penalty: s.repeatPenalty,
    presence_penalty: s.presencePenalty,
    frequency_penalty: s.frequencyPenalty,
  };
  const out: Record<string, unknown> = {};
  for (const [field, name] of Object.entries(sampling.names) as [SamplingField, string][]) {
    const value = values[field];
    if (value !== undefined) out[name] = value;
  }
  const schema = jsonSchemaOf(s);
  if (schema && sampling.json === "guide")
    Object.assign(out, { guided_decoding_guide_type: "json_schema", guided_decoding_guide: JSON.stringify(schema) });
  if (schema && sampling.json === "vllm") out.guided_decoding = JSON.stringify({ json: schema });
  return out;
}
