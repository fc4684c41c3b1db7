import type Router from "@koa/router";
import type { Context } from "koa";
import { Workload, type ChatMessage } from "../../contracts/gen/llama_orch/v1/common.js";
import { requestBodyValidator } from "../../contracts/openapi.js";
import { compatBody } from "./compat-body.js";
import { enforceFieldPolicy, ignored, invalidField, refused, SUPPORTED, type FieldPolicy } from "./field-policy.js";
import {
  GENERATION_FIELDS,
  includeUsageOf,
  maxTokensOf,
  nowSeconds,
  openAiSampling,
  openAiTask,
  resolveModel,
  type Body,
} from "./openai-request.js";
import { CHAT_CHUNKS, finishReasonOf, OpenAiChunkRenderer, usageOf } from "./openai-stream.js";
import { admit, collectTask, relayCompatStream, type CompatDeps } from "./task-call.js";

const API = "llama-orch's OpenAI-compatible chat completions";
const NO_TOOLS = "tool and function calling is not supported";

/** Every field of OpenAI's chat completion request, and what this endpoint does with it. */
const CHAT_FIELDS: FieldPolicy = {
  ...GENERATION_FIELDS,
  messages: SUPPORTED,
  max_completion_tokens: SUPPORTED,
  response_format: SUPPORTED,
  safety_identifier: SUPPORTED,
  tools: refused(NO_TOOLS, (v) => Array.isArray(v) && v.length === 0),
  tool_choice: refused(NO_TOOLS, (v) => v === "none"),
  functions: refused(NO_TOOLS, (v) => Array.isArray(v) && v.length === 0),
  function_call: refused(NO_TOOLS, (v) => v === "none"),
  parallel_tool_calls: ignored("it only shapes tool calls, which are refused"),
  top_logprobs: refused("log probabilities are not reported", (v) => v === 0),
  audio: refused("audio output is not supported"),
  modalities: refused("only text output is supported", (v) => Array.isArray(v) && v.every((m) => m === "text")),
  prediction: refused("predicted outputs are not supported"),
  reasoning_effort: refused("reasoning effort is not a setting of the engines served here"),
  verbosity: refused("verbosity is not a setting of the engines served here"),
  web_search_options: refused("web search is not supported"),
  moderation: refused("moderation is not supported"),
  store: ignored("nothing is stored for OpenAI's evals or distillation (the task's transcript is kept as for any task)"),
  prompt_cache_key: ignored("the KV cache follows the session (X-Session-Id, or one derived from user)"),
  prompt_cache_retention: ignored("the KV cache follows the session and its TTL"),
  prompt_cache_options: ignored("the KV cache follows the session and its TTL"),
};

/** POST /v1/chat/completions: a chat rendered with the model's own template, as a chunk stream or one body. */
export function mountOpenAiChat(router: Router, deps: CompatDeps): void {
  const validate = requestBodyValidator("createChatCompletion");
  router.post("/v1/chat/completions", async (ctx) => {
    const body = await compatBody(ctx, deps, validate);
    enforceFieldPolicy(body, CHAT_FIELDS, API);
    const messages = chatMessages(body["messages"] as Body[]);
    const includeUsage = includeUsageOf(body);
    const target = await resolveModel(ctx, deps, body, Workload.WORKLOAD_COMPLETION);
    const { maxTokens, field } = maxTokensOf(body, target, deps.defaultMaxTokens);
    const request = openAiTask(ctx, deps, body, target, {
      workload: Workload.WORKLOAD_COMPLETION,
      maxTokens,
      maxTokensField: field,
      inputField: "messages",
      messages,
      sampling: openAiSampling(body),
    });
    const { taskId } = await admit(ctx, deps, request, "openai.chat");
    const head = { id: `chatcmpl-${taskId}`, taskId, model: target.name, created: nowSeconds() };
    if (body["stream"] === true) {
      await relayCompatStream(ctx, deps, taskId, new OpenAiChunkRenderer(CHAT_CHUNKS, head, includeUsage).render, "openai.chat");
      return;
    }
    await respondWithCompletion(ctx, deps, head);
  });
}

async function respondWithCompletion(ctx: Context, deps: CompatDeps, head: { id: string; taskId: string; model: string; created: number }) {
  const outcome = await collectTask(ctx, deps, head.taskId);
  if (!outcome) {
    ctx.respond = false; // the client is gone; core cancels the task as for a closed stream
    return;
  }
  ctx.body = {
    id: head.id,
    object: "chat.completion",
    created: head.created,
    model: head.model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: outcome.text, refusal: null },
        logprobs: null,
        finish_reason: finishReasonOf(outcome.end.stopReason),
      },
    ],
    usage: usageOf(outcome.end),
  };
}

/** Roles a chat template knows; `developer` is OpenAI's newer name for `system`. */
const ROLES: Record<string, string> = { system: "system", developer: "system", user: "user", assistant: "assistant" };

/**
 * OpenAI messages as the task's chat: text content only (a string, or text
 * parts joined by newlines); tool turns, names and non-text parts are refused
 * because a chat template would drop or misrender them.
 */
export function chatMessages(raw: readonly Body[]): ChatMessage[] {
  return raw.map((m, i) => {
    const at = `/messages/${i}`;
    const role = ROLES[String(m["role"])];
    if (!role)
      throw invalidField(
        `${at}/role`,
        `messages[${i}].role ${JSON.stringify(m["role"])} is not supported: ${NO_TOOLS}; use system, developer, user or assistant`,
      );
    if (m["name"] !== undefined && m["name"] !== null)
      throw invalidField(`${at}/name`, `messages[${i}].name is not supported: chat templates render a role and its content only`);
    for (const key of ["tool_calls", "function_call", "audio"]) {
      const v = m[key];
      if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0))
        throw invalidField(`${at}/${key}`, `messages[${i}].${key} is not supported: ${NO_TOOLS}`);
    }
    return { role, content: contentText(m["content"], at, i) };
  });
}

function contentText(content: unknown, at: string, i: number): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) throw invalidField(`${at}/content`, `messages[${i}].content must be a string or a list of text parts`);
  return content
    .map((part: Body, j) => {
      if (part["type"] !== "text" || typeof part["text"] !== "string") {
        throw invalidField(
          `${at}/content/${j}/type`,
          `messages[${i}].content[${j}] is a ${String(part["type"])} part; only text parts are supported`,
        );
      }
      return part["text"];
    })
    .join("\n");
}
