import type Router from "@koa/router";
import { requestBodyValidator } from "../../contracts/openapi.js";
import { compatBody } from "./compat-body.js";
import { enforceFieldPolicy } from "./field-policy.js";
import { anthropicTask, matchedStopSequence, MESSAGE_FIELDS, resolveAnthropicModel } from "./anthropic-request.js";
import { AnthropicEventRenderer, messageJson, type MessageHead } from "./anthropic-stream.js";
import { admit, collectTask, relayCompatStream, type CompatDeps } from "./task-call.js";

const API = "llama-orch's Anthropic-compatible Messages API";

/** POST /v1/messages and /v1/messages/count_tokens. */
export function mountAnthropicMessages(router: Router, deps: CompatDeps): void {
  const validateMessage = requestBodyValidator("createMessage");
  const validateCount = requestBodyValidator("countMessageTokens");

  router.post("/v1/messages", async (ctx) => {
    const body = await compatBody(ctx, deps, validateMessage);
    enforceFieldPolicy(body, MESSAGE_FIELDS, API);
    const target = await resolveAnthropicModel(ctx, deps, body);
    const request = anthropicTask(ctx, deps, body, target, body["max_tokens"] as number);
    const { taskId } = await admit(ctx, deps, request, "anthropic.messages");
    const head: MessageHead = {
      id: `msg_${taskId}`,
      taskId,
      model: target.name,
      stopSequence: (r) => matchedStopSequence(body, r),
    };
    if (body["stream"] === true) {
      await relayCompatStream(ctx, deps, taskId, new AnthropicEventRenderer(head).render, "anthropic.messages");
      return;
    }
    const outcome = await collectTask(ctx, deps, taskId);
    if (!outcome) {
      ctx.respond = false; // the client is gone; core cancels the task as for a closed stream
      return;
    }
    ctx.body = messageJson(head, outcome.text, outcome.end);
  });

  /**
   * The count is the engine's own: the chat runs through the same queue as
   * a one-token generation, and its tokens_in is the rendered template's
   * length in the model's tokens — what /v1/messages reports as
   * usage.input_tokens for the same messages. It costs a prefill; no guess
   * from characters would match the model's tokenizer and template.
   */
  router.post("/v1/messages/count_tokens", async (ctx) => {
    const body = await compatBody(ctx, deps, validateCount);
    enforceFieldPolicy(body, MESSAGE_FIELDS, API);
    const target = await resolveAnthropicModel(ctx, deps, body);
    const { taskId } = await admit(ctx, deps, anthropicTask(ctx, deps, body, target, 1), "anthropic.count_tokens");
    const outcome = await collectTask(ctx, deps, taskId);
    if (!outcome) {
      ctx.respond = false;
      return;
    }
    ctx.body = { input_tokens: outcome.end.tokensIn };
  });
}
