import type Router from "@koa/router";
import { Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { requestBodyValidator } from "../../contracts/openapi.js";
import { compatBody } from "./compat-body.js";
import { enforceFieldPolicy, invalidField, refused, SUPPORTED, type FieldPolicy } from "./field-policy.js";
import { openAiTask, resolveModel } from "./openai-request.js";
import { admit, collectTask, type CompatDeps } from "./task-call.js";

const API = "llama-orch's OpenAI-compatible embeddings";

const EMBEDDING_FIELDS: FieldPolicy = {
  model: SUPPORTED,
  input: SUPPORTED,
  // The SDK asks for base64 by default and decodes it itself.
  encoding_format: SUPPORTED,
  user: SUPPORTED,
  dimensions: refused("the vector has the model's own size; truncation to other dimensions is not supported"),
};

/** POST /v1/embeddings: one embedding task for every input, on the embedding workload. */
export function mountOpenAiEmbeddings(router: Router, deps: CompatDeps): void {
  const validate = requestBodyValidator("createEmbedding");
  router.post("/v1/embeddings", async (ctx) => {
    const body = await compatBody(ctx, deps, validate);
    enforceFieldPolicy(body, EMBEDDING_FIELDS, API);
    const inputs = inputsOf(body["input"]);
    const target = await resolveModel(ctx, deps, body, Workload.WORKLOAD_EMBEDDING);
    // An embedding generates nothing; core still wants a token limit of at least one.
    const request = openAiTask(ctx, deps, body, target, {
      workload: Workload.WORKLOAD_EMBEDDING,
      maxTokens: 1,
      maxTokensField: "input",
      inputField: "input",
      inputs,
    });
    const { taskId } = await admit(ctx, deps, request, "openai.embeddings");
    const outcome = await collectTask(ctx, deps, taskId);
    if (!outcome) {
      ctx.respond = false; // the client is gone; core cancels the task as for a closed stream
      return;
    }
    const base64 = body["encoding_format"] === "base64";
    ctx.body = {
      object: "list",
      data: inputs.map((_, index) => {
        const vector = outcome.embeddings.get(index) ?? [];
        return { object: "embedding", index, embedding: base64 ? float32Base64(vector) : vector };
      }),
      model: target.name,
      usage: { prompt_tokens: outcome.end.tokensIn, total_tokens: outcome.end.tokensIn },
    };
  });
}

function inputsOf(raw: unknown): string[] {
  if (typeof raw === "string") return [raw];
  if (Array.isArray(raw) && raw.length > 0 && raw.every((s) => typeof s === "string")) return raw;
  throw invalidField("/input", "input must be a string or a non-empty list of strings; token ids are not supported");
}

/** OpenAI's base64 encoding: the vector's little-endian float32 bytes. */
function float32Base64(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  return bytes.toString("base64");
}
