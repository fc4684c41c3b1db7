import type { Context } from "koa";
import { SamplingParams, type Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { CreateTaskRequest, PlacementMode } from "../../contracts/gen/llama_orch/v1/task.js";
import { callContext } from "../call-context.js";
import { useParamNames, type ParamNames } from "./compat-errors.js";
import { ignored, invalidField, refused, SUPPORTED, type FieldPolicy } from "./field-policy.js";
import type { ModelTarget } from "./model-directory.js";
import { queueControls } from "./queue-controls.js";
import type { CompatDeps } from "./task-call.js";

// What the OpenAI-compatible endpoints share: the sampling fields, the token
// limit, the fields every endpoint treats alike, and how a translated request
// becomes a CreateTaskRequest. Request bodies arrive validated against
// contracts/openapi/compat.yaml (types and ranges); what is checked here is
// what a schema cannot say.

export type Body = Record<string, unknown>;

/** The fields the generating endpoints (chat, completions) share, and what each does here. */
export const GENERATION_FIELDS: FieldPolicy = {
  model: SUPPORTED,
  stream: SUPPORTED,
  stream_options: SUPPORTED,
  max_tokens: SUPPORTED,
  temperature: SUPPORTED,
  top_p: SUPPORTED,
  presence_penalty: SUPPORTED,
  frequency_penalty: SUPPORTED,
  stop: SUPPORTED,
  logit_bias: SUPPORTED,
  seed: SUPPORTED,
  user: SUPPORTED,
  service_tier: SUPPORTED,
  // Not OpenAI's, but what llama.cpp's and vLLM's servers accept beside it, so their clients keep working.
  top_k: SUPPORTED,
  min_p: SUPPORTED,
  repeat_penalty: SUPPORTED,
  n: refused("only n: 1 is supported (one choice per request)", (v) => v === 1),
  logprobs: refused("log probabilities are not reported", (v) => v === false || v === 0),
  metadata: ignored("request metadata is for OpenAI's stored completions; nothing is stored here"),
};

/**
 * OpenAI's names for the task fields a refusal can name; what is not listed
 * is named by its path. A TaskRequest's `/max_tokens` is whichever of
 * max_tokens and max_completion_tokens the client sent.
 */
export function openAiParamNames(maxTokensField: string, inputField: string): ParamNames {
  return {
    "/sampling/temperature": "temperature",
    "/sampling/top_p": "top_p",
    "/sampling/top_k": "top_k",
    "/sampling/min_p": "min_p",
    "/sampling/repeat_penalty": "repeat_penalty",
    "/sampling/presence_penalty": "presence_penalty",
    "/sampling/frequency_penalty": "frequency_penalty",
    "/sampling/stop": "stop",
    "/sampling/logit_bias": "logit_bias",
    "/sampling/json_schema": "response_format",
    "/max_tokens": maxTokensField,
    "/model_ref": "model",
    "/model": "model",
    "/engine": "model",
    "/ctx": "model",
    "/prompt": inputField,
    "/inputs": inputField,
    "/messages": "messages",
    "/seed": "seed",
    "/priority": "X-Priority",
    "/deadline_ms": "X-Deadline-Ms",
    "/session_id": "X-Session-Id",
  };
}

/** The sampling fields as SamplingParams; undefined when none is set, so a plain request asks no feature of the engine. */
export function openAiSampling(body: Body): SamplingParams | undefined {
  const num = (name: string) => (typeof body[name] === "number" ? body[name] : undefined);
  const stop = typeof body["stop"] === "string" ? [body["stop"]] : Array.isArray(body["stop"]) ? (body["stop"] as string[]) : [];
  const sampling = SamplingParams.fromPartial({
    temperature: num("temperature"),
    topP: num("top_p"),
    topK: num("top_k"),
    minP: num("min_p"),
    repeatPenalty: num("repeat_penalty"),
    presencePenalty: num("presence_penalty"),
    frequencyPenalty: num("frequency_penalty"),
    stop: stop.filter((s) => s !== ""),
    logitBias: (body["logit_bias"] as Record<string, number> | undefined) ?? {},
    jsonSchema: jsonSchemaOf(body["response_format"]),
  });
  const anySet =
    Object.values(sampling).some((v) => typeof v === "number") ||
    sampling.stop.length > 0 ||
    Object.keys(sampling.logitBias).length > 0 ||
    sampling.jsonSchema !== "";
  return anySet ? sampling : undefined;
}

/** `response_format` as the JSON Schema the engine's grammar must enforce; "" for free text. */
function jsonSchemaOf(format: unknown): string {
  if (typeof format !== "object" || format === null) return "";
  const f = format as { type?: string; json_schema?: { schema?: unknown } };
  if (f.type === "json_object") return JSON.stringify({ type: "object" });
  if (f.type === "json_schema") {
    const schema = f.json_schema?.schema;
    if (typeof schema !== "object" || schema === null) {
      throw invalidField("/response_format/json_schema/schema", "response_format.json_schema.schema must be a JSON Schema object");
    }
    return JSON.stringify(schema);
  }
  return "";
}

/**
 * max_completion_tokens, else max_tokens, else the edge's default capped at
 * the model's context; core refuses a limit that does not fit in ctx.
 */
export function maxTokensOf(body: Body, target: ModelTarget, defaultMaxTokens: number): { maxTokens: number; field: string } {
  const completion = body["max_completion_tokens"];
  const plain = body["max_tokens"];
  if (typeof completion === "number" && typeof plain === "number" && completion !== plain) {
    throw invalidField("/max_completion_tokens", "max_tokens and max_completion_tokens disagree; send one of them");
  }
  if (typeof completion === "number") return { maxTokens: completion, field: "max_completion_tokens" };
  if (typeof plain === "number") return { maxTokens: plain, field: "max_tokens" };
  return { maxTokens: Math.min(defaultMaxTokens, target.ctx), field: "max_tokens" };
}

/** stream_options only mean something on a stream; include_usage asks for the final usage chunk. */
export function includeUsageOf(body: Body): boolean {
  const options = body["stream_options"] as { include_usage?: boolean } | undefined;
  if (options && body["stream"] !== true) throw invalidField("/stream_options", "stream_options is only allowed with stream: true");
  return options?.include_usage === true;
}

/** What differs between the endpoints' tasks; the rest is the same for all of them. */
export interface TaskParts {
  workload: Workload;
  maxTokens: number;
  maxTokensField: string;
  inputField: string;
  prompt?: string;
  inputs?: string[];
  messages?: { role: string; content: string }[];
  sampling?: SamplingParams;
}

/** The CreateTaskRequest for a resolved model: queue controls from the headers, placement pinned to the name's pool if it has one. */
export function openAiTask(ctx: Context, deps: CompatDeps, body: Body, target: ModelTarget, parts: TaskParts): CreateTaskRequest {
  useParamNames(ctx, openAiParamNames(parts.maxTokensField, parts.inputField));
  const controls = queueControls(ctx, {
    user: [body["user"], body["safety_identifier"]].find((u): u is string => typeof u === "string" && u !== ""),
    serviceTier: typeof body["service_tier"] === "string" ? body["service_tier"] : undefined,
    defaultDeadlineMs: deps.defaultDeadlineMs,
  });
  return CreateTaskRequest.fromPartial({
    ...controls,
    workload: parts.workload,
    modelRef: target.modelRef,
    engine: target.engine,
    ctx: target.ctx,
    seed: typeof body["seed"] === "number" ? body["seed"] : undefined,
    prompt: parts.prompt ?? "",
    inputs: parts.inputs ?? [],
    messages: parts.messages ?? [],
    maxTokens: parts.maxTokens,
    sampling: parts.sampling,
    placement: target.pool ? { mode: PlacementMode.PLACEMENT_MODE_PIN, pinPoolId: target.pool } : undefined,
  });
}

/** The model a request names, resolved for its workload (404 in OpenAI's shape when nothing serves it). */
export function resolveModel(ctx: Context, deps: CompatDeps, body: Body, workload: Workload): Promise<ModelTarget> {
  useParamNames(ctx, openAiParamNames("max_tokens", "input"));
  return deps.models.resolve(callContext(ctx), body["model"] as string, workload);
}

/** Seconds since the epoch, as OpenAI's `created`. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
