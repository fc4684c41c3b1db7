import type Router from "@koa/router";
import { mountAnthropicMessages } from "./anthropic-messages.js";
import { mountOpenAiChat } from "./openai-chat.js";
import { mountOpenAiCompletions } from "./openai-completions.js";
import { mountOpenAiEmbeddings } from "./openai-embeddings.js";
import { mountOpenAiModels } from "./openai-models.js";
import { mountRerank } from "./rerank.js";
import type { CompatDeps } from "./task-call.js";

export type { CompatDeps } from "./task-call.js";

/**
 * The OpenAI- and Anthropic-compatible APIs: translations at the edge into
 * the same CreateTask and StreamTask calls as the native API (one module
 * each), their errors in each API's own shape (compat-errors.ts).
 */
export function mountCompatRoutes(router: Router, deps: CompatDeps): void {
  mountOpenAiChat(router, deps);
  mountOpenAiCompletions(router, deps);
  mountOpenAiEmbeddings(router, deps);
  mountOpenAiModels(router, deps);
  mountRerank(router, deps);
  mountAnthropicMessages(router, deps);
}
