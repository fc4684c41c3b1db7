// What Triton's generate extension and KServe v2 metadata look like on the
// wire, and how this adapter fills and reads them. No I/O here, so the
// decisions that depend on the served model (which field takes the seed) are
// plain functions of its metadata.
//
// Sources: triton-inference-server/server docs/protocol/extension_generate.md
// and src/http_server.cc (a request key that names a model input becomes that
// tensor, any other key becomes a request parameter); the TensorRT-LLM
// ensemble (NVIDIA/TensorRT-LLM triton_backend/all_models/inflight_batcher_llm/
// ensemble/config.pbtxt: input `seed`; older tensorrtllm_backend releases:
// `random_seed`); the vLLM backend (triton-inference-server/vllm_backend
// src/utils/request.py: sampling settings in the `sampling_parameters` input,
// a JSON string).
import { StopReason, type SamplingParams } from "../../contracts/gen/llama_orch/v1/common.js";
import { NO_SAMPLING, tritonSamplingFields, type TritonSampling } from "./triton-sampling.js";

/** `GET /v2`: KServe v2 server metadata. */
export interface ServerMetadata {
  name?: string;
  version?: string;
  extensions?: string[];
}

/** `GET /v2/models/{model}`: KServe v2 model metadata. */
export interface ModelMetadata {
  name?: string;
  versions?: string[];
  platform?: string;
  inputs?: { name: string; datatype?: string; shape?: number[] }[];
  outputs?: { name: string; datatype?: string; shape?: number[] }[];
}

/**
 * Where the request's settings go for this model:
 * - "seed": top-level `max_tokens` and `seed` (the current TensorRT-LLM
 *   ensemble's inputs; for a model without such inputs Triton passes them on
 *   as request parameters);
 * - "random_seed": the same with the seed as `random_seed` (TensorRT-LLM
 *   ensembles before the rename);
 * - "sampling_parameters": one JSON string input holding `max_tokens` and
 *   `seed` (the vLLM backend; top-level keys would reach vLLM only on backend
 *   versions that read request parameters, and an unknown key such as
 *   `random_seed` makes it reject the whole parameter set).
 */
export type SeedRoute = "seed" | "random_seed" | "sampling_parameters";

export interface ModelLayout {
  seedRoute: SeedRoute;
  /** The model has an input that takes the seed; otherwise it is sent but may be ignored. */
  seedHonoured: boolean;
  /** Ask for `num_input_tokens` (optional `return_num_input_tokens` input), for tokens_in. */
  askInputTokens: boolean;
  /** Ask for `finish_reason` (the vLLM backend's optional `return_finish_reason` input). */
  askFinishReason: boolean;
}

/** Before the model's metadata is known: the current TensorRT-LLM ensemble's field names, nothing extra asked. */
export const UNKNOWN_LAYOUT: ModelLayout = { seedRoute: "seed", seedHonoured: false, askInputTokens: false, askFinishReason: false };

export function layoutOf(metadata: ModelMetadata): ModelLayout {
  const inputs = new Set((metadata.inputs ?? []).map((i) => i.name));
  const seedRoute: SeedRoute = inputs.has("sampling_parameters")
    ? "sampling_parameters"
    : inputs.has("random_seed") && !inputs.has("seed")
      ? "random_seed"
      : "seed";
  return {
    seedRoute,
    seedHonoured: seedRoute === "sampling_parameters" || inputs.has("seed") || inputs.has("random_seed"),
    askInputTokens: inputs.has("return_num_input_tokens"),
    askFinishReason: inputs.has("return_finish_reason"),
  };
}

export interface GenerateSettings {
  prompt: string;
  maxTokens: number;
  seed?: number | undefined;
  sampling?: SamplingParams | undefined;
}

/** The JSON body of `POST /v2/models/{model}/generate_stream`; `taken`: the sampling fields the model takes (triton-sampling.ts). */
export function generateBody(s: GenerateSettings, layout: ModelLayout, taken: TritonSampling = NO_SAMPLING): Record<string, unknown> {
  const body: Record<string, unknown> = { text_input: s.prompt, stream: true };
  const fields = tritonSamplingFields(s.sampling, taken);
  if (layout.seedRoute === "sampling_parameters") {
    const sampling: Record<string, unknown> = {};
    if (s.maxTokens > 0) sampling.max_tokens = s.maxTokens;
    if (s.seed !== undefined) sampling.seed = s.seed;
    body.sampling_parameters = JSON.stringify({ ...sampling, ...fields });
  } else {
    if (s.maxTokens > 0) body.max_tokens = s.maxTokens;
    if (s.seed !== undefined) body[layout.seedRoute] = s.seed;
    Object.assign(body, fields);
  }
  if (layout.askInputTokens) body.return_num_input_tokens = true;
  if (layout.askFinishReason) body.return_finish_reason = true;
  return body;
}

/** One SSE `data:` frame of generate_stream, as far as this adapter reads it. */
export interface Chunk {
  /** `text_output`: the text new since the previous response (streaming backends). */
  text?: string;
  /** `{"error": ...}`: Triton's error object, also sent inside a stream that began with 200. */
  error?: string;
  inputTokens?: number;
  /** The vLLM backend's `finish_reason`: "None" until the last response, then "length" or "stop". */
  finishReason?: string;
}

/** The frame's fields; undefined when it is not a JSON object. */
export function parseChunk(data: string): Chunk | undefined {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) return undefined;
  const o = json as Record<string, unknown>;
  const chunk: Chunk = {};
  if (typeof o.error === "string") chunk.error = o.error;
  // Triton strips the array of a one-element tensor; more elements would be more sequences, of which we asked for one.
  const text = first(o.text_output);
  if (typeof text === "string") chunk.text = text;
  const inputTokens = first(o.num_input_tokens);
  if (typeof inputTokens === "number" && Number.isSafeInteger(inputTokens) && inputTokens >= 0) chunk.inputTokens = inputTokens;
  const finish = first(o.finish_reason);
  if (typeof finish === "string") chunk.finishReason = finish;
  return chunk;
}

function first(value: unknown): unknown {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Counts one generation's responses. The generate extension has no finish
 * reason of its own: a stream that delivered max_tokens responses stopped for
 * max_tokens, a shorter one at end of sequence; a backend that reports
 * `finish_reason` overrides that.
 */
export class StreamTally {
  tokens = 0;
  inputTokens: number | undefined;
  private finishReason: string | undefined;

  constructor(private readonly maxTokens: number) {}

  /** The token text this chunk carries, if any. */
  add(chunk: Chunk): string | undefined {
    if (chunk.inputTokens !== undefined) this.inputTokens = chunk.inputTokens;
    if (chunk.finishReason !== undefined && chunk.finishReason !== "None") this.finishReason = chunk.finishReason;
    if (chunk.text === undefined) return undefined;
    this.tokens++;
    return chunk.text;
  }

  stopReason(): StopReason {
    if (this.finishReason === "length") return StopReason.STOP_REASON_MAX_TOKENS;
    if (this.finishReason === "stop") return StopReason.STOP_REASON_EOS;
    return this.maxTokens > 0 && this.tokens >= this.maxTokens ? StopReason.STOP_REASON_MAX_TOKENS : StopReason.STOP_REASON_EOS;
  }
}

/**
 * When the model's first response is an error, Triton sets the HTTP status
 * from it but still writes the body as an SSE frame (`data: {"error":...}`),
 * which the shared error mapping shows raw. This turns
 * "POST p: HTTP 400: data: {"error":"m"}" into "POST p: HTTP 400: m".
 */
export function unwrapSseErrorMessage(message: string): string {
  const m = /^(.*?: HTTP \d+): data: ?(\{.*\})\s*$/s.exec(message);
  if (!m) return message;
  const chunk = parseChunk(m[2]!);
  return chunk?.error !== undefined ? `${m[1]}: ${chunk.error}` : message;
}

/**
 * Triton answers a generate for a model it does not serve (absent, unloaded,
 * not at ready state) with HTTP 400 and "Request for unknown model: ...".
 */
export function isUnknownModelMessage(message: string): boolean {
  return /unknown model/i.test(message);
}
