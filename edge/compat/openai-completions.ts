import type Router from "@koa/router";
import { Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { requestBodyValidator } from "../../contracts/openapi.js";
import { compatBody } from "./compat-body.js";
import { enforceFieldPolicy, invalidField, refused, SUPPORTED, type FieldPolicy } from "./field-policy.js";
import { GENERATION_FIELDS, includeUsageOf, maxTokensOf, nowSeconds, openAiSampling, openAiTask, resolveModel } from "./openai-request.js";
import { finishReasonOf, OpenAiChunkRenderer, TEXT_CHUNKS, usageOf } from "./openai-stream.js";
import { admit, collectTask, relayCompatStream, type CompatDeps } from "./task-call.js";

const API = "llama-orch's OpenAI-compatible completions";

/** Every field of OpenAI's (legacy) completion request, and what this endpoint does with it. */
const COMPLETION_FIELDS: FieldPolicy = {
  ...GENERATION_FIELDS,
  prompt: SUPPORTED,
  best_of: refused("only best_of: 1 is supported (one generation per request)", (v) => v === 1),
  echo: refused("echoing the prompt is not supported", (v) => v === false),
  suffix: refused("insertion (a suffix after the completion) is not supported"),
};

/** POST /v1/completions: the prompt as given (no chat template), as a chunk stream or one body. */
export function mountOpenAiCompletions(router: Router, deps: CompatDeps): void {
  const validate = requestBodyValidator("createCompletion");
  router.post("/v1/completions", async (ctx) => {
    const body = await compatBody(ctx, deps, validate);
    enforceFieldPolicy(body, COMPLETION_FIELDS, API);
    const prompt = promptOf(body["prompt"]);
    const includeUsage = includeUsageOf(body);
    const target = await resolveModel(ctx, deps, body, Workload.WORKLOAD_COMPLETION);
    const { maxTokens, field } = maxTokensOf(body, target, deps.defaultMaxTokens);
    const request = openAiTask(ctx, deps, body, target, {
      workload: Workload.WORKLOAD_COMPLETION,
      maxTokens,
      maxTokensField: field,
      inputField: "prompt",
      prompt,
      sampling: openAiSampling(body),
    });
    const { taskId } = await admit(ctx, deps, request, "openai.completions");
    const head = { id: `cmpl-${taskId}`, taskId, model: target.name, created: nowSeconds() };
    if (body["stream"] === true) {
      const renderer = new OpenAiChunkRenderer(TEXT_CHUNKS, head, includeUsage);
      await relayCompatStream(ctx, deps, taskId, renderer.render, "openai.completions");
      return;
    }
    const outcome = await collectTask(ctx, deps, taskId);
    if (!outcome) {
      ctx.respond = false; // the client is gone; core cancels the task as for a closed stream
      return;
    }
    ctx.body = {
      id: head.id,
      object: "text_completion",
      created: head.created,
      model: head.model,
      choices: [{ index: 0, text: outcome.text, logprobs: null, finish_reason: finishReasonOf(outcome.end.stopReason) }],
      usage: usageOf(outcome.end),
    };
  });
}

/** One text prompt: a string, or a list holding one string. Several prompts would be several choices; token ids need the model's tokenizer. */
function promptOf(raw: unknown): string {
  if (typeof raw === "string") return raw;
  if (Array.isArray(raw) && raw.length === 1 && typeof raw[0] === "string") return raw[0];
  if (Array.isArray(raw) && raw.every((p) => typeof p === "string")) {
    throw invalidField("/prompt", "prompt: one prompt per request is supported (send each prompt as a request of its own)");
  }
  throw invalidField("/prompt", "prompt: token ids are not supported; send the prompt as text");
}
