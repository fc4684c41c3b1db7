// TGI's wire format (router/src/lib.rs and server.rs of
// huggingface/text-generation-inference, docs/openapi.json) and the pure
// mappings from it to ours, kept apart from the adapter so they can be read
// against the engine's source line by line.
import { Engine, StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import { httpEngineInfo, type EngineInfo } from "../engine-adapter.js";
import { kindOfStatus } from "../http/engine-errors.js";
import { samplingFeatures } from "../engine/sampling-support.js";
import { TGI_HONOURED, tgiSampling, type TgiSampling } from "./tgi-sampling.js";

/** `GET /info` (the fields we read; older releases say max_input_length for max_input_tokens). */
export interface TgiInfo {
  model_id?: string;
  /** The Hub repository commit the weights came from, when TGI knows it (null for a local path). */
  model_sha?: string | null;
  max_total_tokens?: number;
  max_input_tokens?: number;
  max_input_length?: number;
  max_concurrent_requests?: number;
  version?: string;
}

/** `POST /generate_stream` body: GenerateRequest. */
export interface TgiGenerateRequest {
  inputs: string;
  parameters: {
    details: true;
    max_new_tokens?: number;
    seed?: number;
  } & TgiSampling;
}

/** What one SSE frame of `/generate_stream` means to a generation. */
export type TgiStreamEvent =
  | {
      type: "token";
      /** undefined for a special token ("</s>", "<|eot_id|>"): TGI sends it, a client must not print it. */
      text: string | undefined;
      /** Present on the last frame only (generated_text is set). */
      end?: { stopReason: StopReason; tokensIn?: number };
    }
  | { type: "error"; kind: WorkerErrorKind; body: string };

interface WireToken {
  text?: unknown;
  special?: unknown;
}

interface WireDetails {
  finish_reason?: unknown;
  generated_tokens?: unknown;
  /** StreamDetails since TGI 2.0. */
  input_length?: unknown;
  /** Only in non-streamed Details; accepted in case a proxy forwards those. */
  prefill?: unknown;
}

/**
 * TGI's default for `max_concurrent_requests`: what the router admits at once
 * (beyond it new requests fail "overloaded"), so the natural slot count.
 */
export const TGI_DEFAULT_MAX_CONCURRENT_REQUESTS = 128;

export function generateRequestBody(request: SubmitRequest): TgiGenerateRequest {
  const parameters: TgiGenerateRequest["parameters"] = { details: true };
  // TGI rejects max_new_tokens 0 ("must be strictly positive"); without it the engine's default applies.
  if (request.maxTokens > 0) parameters.max_new_tokens = request.maxTokens;
  // No do_sample unless a temperature asks for it: TGI's default (greedy unless sampling is configured) stays the engine's; the seed then pins any sampling it does.
  if (request.seed !== undefined && Number.isSafeInteger(request.seed) && request.seed >= 0) parameters.seed = request.seed;
  Object.assign(parameters, tgiSampling(request.sampling));
  return { inputs: request.prompt, parameters };
}

/**
 * One frame's `data`. An `{"error", "error_type"}` frame is classified by
 * the HTTP status TGI gives the same error outside a stream, so the one
 * status mapping (kindOfStatus) decides; a frame that is not TGI's shape
 * is an engine error. `stopsAsked`: the task sent stop strings, so a stop
 * sequence that ends it is its own (see stopReasonOf).
 */
export function parseStreamEvent(data: string, stopsAsked = false): TgiStreamEvent {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return {
      type: "error",
      kind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR,
      body: `invalid JSON in the engine's stream: ${data.slice(0, 200)}`,
    };
  }
  const frame = (json && typeof json === "object" ? json : {}) as {
    token?: unknown;
    details?: unknown;
    generated_text?: unknown;
    error?: unknown;
    error_type?: unknown;
  };
  if (typeof frame.error === "string") {
    return { type: "error", kind: kindOfStatus(statusOfErrorType(frame.error_type)), body: data };
  }
  const token = frame.token && typeof frame.token === "object" ? (frame.token as WireToken) : undefined;
  if (!token || typeof token.text !== "string") {
    return {
      type: "error",
      kind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR,
      body: `unexpected frame in the engine's stream: ${data.slice(0, 200)}`,
    };
  }
  const text = token.special === true ? undefined : token.text;
  if (frame.generated_text === null || frame.generated_text === undefined) return { type: "token", text };
  const details = frame.details && typeof frame.details === "object" ? (frame.details as WireDetails) : undefined;
  const end: { stopReason: StopReason; tokensIn?: number } = { stopReason: stopReasonOf(details?.finish_reason, stopsAsked) };
  const tokensIn = promptTokensOf(details);
  if (tokensIn !== undefined) end.tokensIn = tokensIn;
  return { type: "token", text, end };
}

/**
 * TGI's FinishReason. We always ask for details, so an absent one means the
 * engine changed: say so rather than guess. A stop sequence is the task's
 * own (STOP) when it sent some, else one the deployment configured.
 */
export function stopReasonOf(finishReason: unknown, stopsAsked = false): StopReason {
  switch (finishReason) {
    case "length":
      return StopReason.STOP_REASON_MAX_TOKENS;
    case "eos_token":
      return StopReason.STOP_REASON_EOS;
    case "stop_sequence":
      return stopsAsked ? StopReason.STOP_REASON_STOP : StopReason.STOP_REASON_STOP_WORD;
    default:
      return StopReason.STOP_REASON_UNSPECIFIED;
  }
}

function promptTokensOf(details: WireDetails | undefined): number | undefined {
  if (!details) return undefined;
  if (typeof details.input_length === "number" && Number.isSafeInteger(details.input_length) && details.input_length >= 0)
    return details.input_length;
  if (Array.isArray(details.prefill) && details.prefill.length > 0) return details.prefill.length;
  return undefined;
}

/**
 * The status TGI answers an InferError with outside a stream
 * (`impl From<InferError> for (StatusCode, Json<ErrorResponse>)`), by its
 * `error_type`; unknown types count as a failed generation (500).
 */
export function statusOfErrorType(errorType: unknown): number {
  switch (errorType) {
    case "validation":
    case "template_error":
    case "tool_error":
    case "missing_template_variable":
      return 422;
    case "overloaded":
      return 429;
    case "generation":
      return 424;
    default:
      return 500;
  }
}

/**
 * Info as announced by the sidecar. engine_version is TGI's release;
 * model_digest is the Hub commit sha of the weights (`model_sha`), which
 * pins them as well as a file digest would but is not a sha256 of the
 * files; "" when TGI serves a local path and reports none.
 */
export function engineInfoOf(modelRef: string, info: TgiInfo | undefined): EngineInfo {
  return httpEngineInfo({
    engine: Engine.ENGINE_TGI,
    adapter: "tgi",
    engineVersion: typeof info?.version === "string" ? info.version : "",
    modelRef,
    modelDigest: typeof info?.model_sha === "string" ? info.model_sha : "",
    ctxMax: positiveInt(info?.max_total_tokens) ?? 0,
    features: { seed: "true", cancel: "abort", ...samplingFeatures(TGI_HONOURED) },
  });
}

export function slotsOf(info: TgiInfo | undefined): number | undefined {
  return positiveInt(info?.max_concurrent_requests);
}

function positiveInt(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}
