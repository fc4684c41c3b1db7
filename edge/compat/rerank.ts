import type Router from "@koa/router";
import { Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { requestBodyValidator } from "../../contracts/openapi.js";
import { compatBody } from "./compat-body.js";
import { enforceFieldPolicy, SUPPORTED, type FieldPolicy } from "./field-policy.js";
import { openAiTask, resolveModel } from "./openai-request.js";
import { admit, collectTask, type CompatDeps } from "./task-call.js";

const API = "llama-orch's rerank endpoint";

const RERANK_FIELDS: FieldPolicy = {
  model: SUPPORTED,
  query: SUPPORTED,
  documents: SUPPORTED,
  top_n: SUPPORTED,
  return_documents: SUPPORTED,
  user: SUPPORTED,
};

/**
 * POST /v1/rerank in the shape llama.cpp's server and vLLM serve: the query
 * and documents become one rerank task; results come best first, cut to
 * top_n, with each document's index in the request.
 */
export function mountRerank(router: Router, deps: CompatDeps): void {
  const validate = requestBodyValidator("rerank");
  router.post("/v1/rerank", async (ctx) => {
    const body = await compatBody(ctx, deps, validate);
    enforceFieldPolicy(body, RERANK_FIELDS, API);
    const documents = body["documents"] as string[];
    const target = await resolveModel(ctx, deps, body, Workload.WORKLOAD_RERANK);
    const request = openAiTask(ctx, deps, body, target, {
      workload: Workload.WORKLOAD_RERANK,
      maxTokens: 1,
      maxTokensField: "documents",
      inputField: "documents",
      prompt: body["query"] as string,
      inputs: documents,
    });
    const { taskId } = await admit(ctx, deps, request, "rerank");
    const outcome = await collectTask(ctx, deps, taskId);
    if (!outcome) {
      ctx.respond = false; // the client is gone; core cancels the task as for a closed stream
      return;
    }
    const ranked = [...outcome.scores].sort((a, b) => b.relevanceScore - a.relevanceScore || a.index - b.index);
    const topN = typeof body["top_n"] === "number" ? body["top_n"] : ranked.length;
    ctx.body = {
      id: `rerank-${taskId}`,
      object: "list",
      model: target.name,
      results: ranked.slice(0, topN).map((r) => ({
        index: r.index,
        relevance_score: r.relevanceScore,
        ...(body["return_documents"] === true ? { document: { text: documents[r.index] } } : {}),
      })),
      usage: { prompt_tokens: outcome.end.tokensIn, total_tokens: outcome.end.tokensIn },
    };
  });
}
