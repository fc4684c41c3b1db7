// What the Triton fake's model looks like in each layout it can imitate (see
// triton-fake.ts for the sources): the inputs a request must carry, where the
// request's max_tokens and stream flag are read, and the model metadata served.

export type TritonFakeLayout = "trtllm" | "trtllm-legacy" | "vllm";

/** The model the fake serves, as its metadata names it. */
export interface ServedModel {
  modelName: string;
  modelVersions: string[];
  layout: TritonFakeLayout;
}

/** The request's max_tokens and stream flag, wherever this layout takes them. */
export function requestSettings(body: Record<string, unknown>, layout: TritonFakeLayout): { maxTokens: number; stream: boolean } {
  let maxTokens: unknown = body.max_tokens;
  if (layout === "vllm") {
    maxTokens = 16; // vLLM's SamplingParams default
    if (typeof body.sampling_parameters === "string") {
      try {
        const sampling = JSON.parse(body.sampling_parameters) as Record<string, unknown>;
        if (typeof sampling.max_tokens === "number") maxTokens = sampling.max_tokens;
      } catch {
        // the backend would log and fall back; so does the fake
      }
    } else if (typeof body.max_tokens === "number") maxTokens = body.max_tokens;
  }
  return { maxTokens: typeof maxTokens === "number" ? maxTokens : 0, stream: body.stream === true };
}

export function requiredInputs(layout: TritonFakeLayout): string[] {
  return layout === "vllm" ? ["text_input"] : ["text_input", "max_tokens"];
}

const batched = (name: string, datatype: string): Record<string, unknown> => ({ name, datatype, shape: [-1, 1] });
const single = (name: string, datatype: string): Record<string, unknown> => ({ name, datatype, shape: [1] });

export function modelMetadata(b: ServedModel): Record<string, unknown> {
  const head = { name: b.modelName, versions: b.modelVersions };
  switch (b.layout) {
    case "trtllm":
      return { ...head, platform: "ensemble", ...TRTLLM_TENSORS };
    case "trtllm-legacy":
      return { ...head, platform: "ensemble", ...TRTLLM_LEGACY_TENSORS };
    case "vllm":
      return { ...head, platform: "", ...VLLM_TENSORS };
  }
}

/** The current TensorRT-LLM ensemble. */
const TRTLLM_TENSORS = {
  inputs: [
    batched("text_input", "BYTES"),
    batched("max_tokens", "INT32"),
    batched("bad_words", "BYTES"),
    batched("stop_words", "BYTES"),
    batched("exclude_input_in_output", "BOOL"),
    batched("end_id", "INT32"),
    batched("pad_id", "INT32"),
    batched("top_k", "INT32"),
    batched("top_p", "FP32"),
    batched("temperature", "FP32"),
    batched("repetition_penalty", "FP32"),
    batched("presence_penalty", "FP32"),
    batched("frequency_penalty", "FP32"),
    batched("seed", "UINT64"),
    batched("return_num_input_tokens", "BOOL"),
    batched("return_num_output_tokens", "BOOL"),
    batched("beam_width", "INT32"),
    batched("stream", "BOOL"),
    batched("guided_decoding_guide_type", "BYTES"),
    batched("guided_decoding_guide", "BYTES"),
  ],
  outputs: [
    batched("text_output", "BYTES"),
    batched("cum_log_probs", "FP32"),
    batched("batch_index", "INT32"),
    batched("sequence_index", "INT32"),
    batched("num_input_tokens", "INT32"),
    batched("num_output_tokens", "INT32"),
  ],
};

/** The ensemble of earlier tensorrtllm_backend releases. */
const TRTLLM_LEGACY_TENSORS = {
  inputs: [
    batched("text_input", "BYTES"),
    batched("max_tokens", "INT32"),
    batched("bad_words", "BYTES"),
    batched("stop_words", "BYTES"),
    batched("top_k", "INT32"),
    batched("top_p", "FP32"),
    batched("temperature", "FP32"),
    batched("random_seed", "UINT64"),
    batched("beam_width", "INT32"),
    batched("stream", "BOOL"),
  ],
  outputs: [batched("text_output", "BYTES"), batched("cum_log_probs", "FP32")],
};

/** The vLLM backend's model. */
const VLLM_TENSORS = {
  inputs: [
    single("text_input", "BYTES"),
    { name: "image", datatype: "BYTES", shape: [-1] },
    single("stream", "BOOL"),
    single("sampling_parameters", "BYTES"),
    single("exclude_input_in_output", "BOOL"),
    single("return_finish_reason", "BOOL"),
    single("return_cumulative_logprob", "BOOL"),
    single("return_logprobs", "BOOL"),
    single("return_num_input_tokens", "BOOL"),
    single("return_num_output_tokens", "BOOL"),
  ],
  outputs: [
    { name: "text_output", datatype: "BYTES", shape: [-1] },
    { name: "finish_reason", datatype: "BYTES", shape: [-1] },
    single("num_input_tokens", "UINT32"),
  ],
};
