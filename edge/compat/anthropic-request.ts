import type { Context } from "koa";
import { SamplingParams, StopReason, Workload, type ChatMessage } from "../../contracts/gen/llama_orch/v1/common.js";
import { CreateTaskRequest, PlacementMode } from "../../contracts/gen/llama_orch/v1/task.js";
import { callContext } from "../call-context.js";
import { useParamNames } from "./compat-errors.js";
import { ignored, invalidField, refused, SUPPORTED, type FieldPolicy } from "./field-policy.js";
import type { ModelTarget } from "./model-directory.js";
import { queueControls } from "./queue-controls.js";
import type { CompatDeps } from "./task-call.js";

// Anthropic's Messages request as a chat task. Bodies arrive validated
// against contracts/openapi/compat.yaml; what is checked here is what a
// schema cannot say.

type Body = Record<string, unknown>;

const NO_TOOLS = "tool use is not supported";

/** Every field of the Messages request (and of count_tokens, a subset), and what is done with it. */
export const MESSAGE_FIELDS: FieldPolicy = {
  model: SUPPORTED,
  max_tokens: SUPPORTED,
  messages: SUPPORTED,
  system: SUPPORTED,
  stop_sequences: SUPPORTED,
  temperature: SUPPORTED,
  top_p: SUPPORTED,
  top_k: SUPPORTED,
  stream: SUPPORTED,
  metadata: SUPPORTED,
  output_config: SUPPORTED,
  service_tier: ignored("there is one queue per priority here; X-Priority chooses it"),
  cache_control: ignored("a caching hint; the KV cache follows the session (X-Session-Id, or one derived from metadata.user_id)"),
  thinking: refused("extended thinking is not supported", (v) => (v as Body)["type"] === "disabled"),
  tools: refused(NO_TOOLS, (v) => Array.isArray(v) && v.length === 0),
  tool_choice: refused(NO_TOOLS, (v) => (v as Body)["type"] === "none"),
  container: refused("code execution containers are not supported"),
  mcp_servers: refused("MCP servers are not supported"),
  context_management: refused("context management is not supported"),
  inference_geo: refused("inference runs where the replicas are"),
  speed: refused("there is one speed here", (v) => v === "standard"),
};

export const ANTHROPIC_PARAMS = {
  "/sampling/temperature": "temperature",
  "/sampling/top_p": "top_p",
  "/sampling/top_k": "top_k",
  "/sampling/stop": "stop_sequences",
  "/sampling/json_schema": "output_config.format",
  "/max_tokens": "max_tokens",
  "/model_ref": "model",
  "/model": "model",
  "/engine": "model",
  "/ctx": "model",
  "/messages": "messages",
  "/priority": "X-Priority",
  "/deadline_ms": "X-Deadline-Ms",
  "/session_id": "X-Session-Id",
};

/** `system` first, then the turns; text blocks only. A final assistant turn (a prefill) is refused: the template starts a new turn. */
export function anthropicChat(body: Body): ChatMessage[] {
  const system = body["system"] === undefined ? [] : [{ role: "system", content: blocksText(body["system"], "/system", "system") }];
  const turns = (body["messages"] as Body[]).map((m, i) => ({
    role: String(m["role"]),
    content: blocksText(m["content"], `/messages/${i}/content`, `messages[${i}].content`),
  }));
  if (turns.at(-1)?.role === "assistant") {
    throw invalidField(
      `/messages/${turns.length - 1}/role`,
      "a final assistant message (prefill) is not supported: the chat template starts a new assistant turn",
    );
  }
  return [...system, ...turns];
}

function blocksText(content: unknown, field: string, label: string): string {
  if (typeof content === "string") return content;
  return (content as Body[])
    .map((block, j) => {
      if (block["type"] !== "text")
        throw invalidField(`${field}/${j}/type`, `${label}[${j}] is a ${String(block["type"])} block; only text blocks are supported`);
      if (Array.isArray(block["citations"]) && block["citations"].length > 0) {
        throw invalidField(`${field}/${j}/citations`, `${label}[${j}].citations are not supported`);
      }
      return block["text"] as string;
    })
    .join("\n");
}

export function anthropicSampling(body: Body): SamplingParams | undefined {
  const num = (name: string) => (typeof body[name] === "number" ? body[name] : undefined);
  const format = (body["output_config"] as { format?: { type?: string; schema?: unknown }; effort?: unknown } | undefined) ?? {};
  if (format.effort !== undefined && format.effort !== null)
    throw invalidField("/output_config/effort", "output_config.effort is not supported: the engines served here have no effort setting");
  const jsonSchema = format.format?.type === "json_schema" ? JSON.stringify(format.format.schema ?? {}) : "";
  const sampling = SamplingParams.fromPartial({
    temperature: num("temperature"),
    topP: num("top_p"),
    topK: num("top_k"),
    stop: ((body["stop_sequences"] as string[] | undefined) ?? []).filter((s) => s !== ""),
    jsonSchema,
  });
  const anySet =
    [sampling.temperature, sampling.topP, sampling.topK].some((v) => v !== undefined) || sampling.stop.length > 0 || jsonSchema !== "";
  return anySet ? sampling : undefined;
}

export type AnthropicStopReason = "end_turn" | "max_tokens" | "stop_sequence";

/** The model's end and a configured stop word are end_turn; one of the request's stop_sequences is stop_sequence. */
export function anthropicStopReason(r: StopReason): AnthropicStopReason {
  if (r === StopReason.STOP_REASON_MAX_TOKENS) return "max_tokens";
  return r === StopReason.STOP_REASON_STOP ? "stop_sequence" : "end_turn";
}

/**
 * Which stop sequence ended the text: engines report that one matched, not
 * which, so it is named only when the request gave exactly one.
 */
export function matchedStopSequence(body: Body, r: StopReason): string | null {
  const stops = (body["stop_sequences"] as string[] | undefined) ?? [];
  return r === StopReason.STOP_REASON_STOP && stops.length === 1 ? stops[0]! : null;
}

export function resolveAnthropicModel(ctx: Context, deps: CompatDeps, body: Body): Promise<ModelTarget> {
  useParamNames(ctx, ANTHROPIC_PARAMS);
  return deps.models.resolve(callContext(ctx), body["model"] as string, Workload.WORKLOAD_COMPLETION);
}

/** The chat task for a Messages request (count_tokens runs the same with max_tokens 1). */
export function anthropicTask(ctx: Context, deps: CompatDeps, body: Body, target: ModelTarget, maxTokens: number): CreateTaskRequest {
  const metadata = body["metadata"] as { user_id?: unknown } | undefined;
  const controls = queueControls(ctx, {
    user: typeof metadata?.user_id === "string" && metadata.user_id !== "" ? metadata.user_id : undefined,
    defaultDeadlineMs: deps.defaultDeadlineMs,
  });
  return CreateTaskRequest.fromPartial({
    ...controls,
    workload: Workload.WORKLOAD_COMPLETION,
    modelRef: target.modelRef,
    engine: target.engine,
    ctx: target.ctx,
    messages: anthropicChat(body),
    maxTokens,
    sampling: anthropicSampling(body),
    placement: target.pool ? { mode: PlacementMode.PLACEMENT_MODE_PIN, pinPoolId: target.pool } : undefined,
  });
}
