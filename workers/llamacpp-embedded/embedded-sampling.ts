// A task's sampling parameters as node-llama-cpp 3.21's
// LlamaContextSequence.evaluate options (dist/evaluator/LlamaContext/
// types.d.ts SequenceEvaluateOptions): temperature, topK, topP, minP;
// repeatPenalty {penalty, presencePenalty, frequencyPenalty, punishTokens}
// over the last 64 tokens (llama.cpp server's repeat_last_n default);
// tokenBias, a TokenBias whose {logit} biases are added to the token's logit
// as llama.cpp's logit_bias is; and a JSON schema as the grammar
// llama.createGrammarForJsonSchema builds, through a
// LlamaGrammarEvaluationState. Unset fields keep llama.cpp server's defaults
// (DEFAULT_SAMPLING), so a task without sampling samples as before. Stop
// strings are matched on the text (engine/stop-matcher.ts), not here.
import type { LlamaContextSequenceRepeatPenalty, LlamaModel, SequenceEvaluateOptions, Token } from "node-llama-cpp";
import { WorkerErrorKind, type SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure } from "../engine-adapter.js";
import { jsonSchemaOf, logitBiasPairs, SAMPLING_FIELDS, type Honoured } from "../engine/sampling-support.js";
import type { LlamaRuntime } from "./llama-runtime.js";

/** Every field, and chats through the model's own template (embedded-chat.ts). */
export const EMBEDDED_HONOURED: Honoured = { engine: "embedded llama.cpp", sampling: SAMPLING_FIELDS, chat: "template" };

/** llama.cpp server's sampling defaults, for what a task does not set. */
export const DEFAULT_SAMPLING = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 } as const;

/** How many of the latest tokens the repetition penalties look at (llama.cpp's repeat_last_n default). */
const PENALTY_WINDOW = 64;

/**
 * The evaluate options for `request`, seeded with `seed`. `history` is the
 * prompt and the tokens generated so far, which the penalties read as it
 * grows. Rejects INVALID_REQUEST for a bias on a token the model does not
 * have or a schema node-llama-cpp cannot turn into a grammar.
 */
export async function evaluateOptions(
  runtime: LlamaRuntime,
  model: LlamaModel,
  request: SubmitRequest,
  seed: number,
  history: readonly Token[],
): Promise<SequenceEvaluateOptions> {
  const s = request.sampling;
  const options: SequenceEvaluateOptions = {
    temperature: s?.temperature ?? DEFAULT_SAMPLING.temperature,
    topK: s?.topK ?? DEFAULT_SAMPLING.topK,
    topP: s?.topP ?? DEFAULT_SAMPLING.topP,
    minP: s?.minP ?? DEFAULT_SAMPLING.minP,
    seed,
    yieldEogToken: true,
  };
  if (s && (s.repeatPenalty !== undefined || s.presencePenalty !== undefined || s.frequencyPenalty !== undefined)) {
    const penalty: LlamaContextSequenceRepeatPenalty = {
      punishTokens: () => history.slice(-PENALTY_WINDOW),
      maxPunishTokens: PENALTY_WINDOW,
      penalty: s.repeatPenalty ?? 1,
      presencePenalty: s.presencePenalty ?? 0,
      frequencyPenalty: s.frequencyPenalty ?? 0,
    };
    options.repeatPenalty = penalty;
  }
  const bias = logitBiasPairs(s);
  if (bias.length > 0) options.tokenBias = tokenBias(runtime, model, bias);
  const schema = jsonSchemaOf(s);
  if (schema) options.grammarEvaluationState = await grammarState(runtime, model, schema);
  return options;
}

function tokenBias(
  runtime: LlamaRuntime,
  model: LlamaModel,
  pairs: readonly [number, number][],
): InstanceType<LlamaRuntime["module"]["TokenBias"]> {
  const size = vocabularySize(model);
  const bias = new runtime.module.TokenBias(model.tokenizer);
  for (const [token, value] of pairs) {
    // llama.cpp indexes its logits by the id: one past the vocabulary is no token at all.
    if (size === undefined || token >= size) {
      throw invalid(
        `sampling.logit_bias names token ${token}, which this model's vocabulary of ${size ?? "unknown size"} does not have (/sampling/logit_bias)`,
      );
    }
    bias.set(token as Token, { logit: value });
  }
  return bias;
}

async function grammarState(runtime: LlamaRuntime, model: LlamaModel, schema: Record<string, unknown>) {
  let grammar;
  try {
    // node-llama-cpp takes a subset of JSON Schema (its GbnfJsonSchema); anything else throws here.
    grammar = await runtime.llama.createGrammarForJsonSchema(schema as Parameters<LlamaRuntime["llama"]["createGrammarForJsonSchema"]>[0]);
  } catch (err) {
    throw invalid(`sampling.json_schema cannot be turned into a grammar (/sampling/json_schema): ${(err as Error).message}`);
  }
  return new runtime.module.LlamaGrammarEvaluationState({ model, grammar });
}

/** The number of tokens in the model's vocabulary, from its GGUF metadata. */
function vocabularySize(model: LlamaModel): number | undefined {
  const tokens = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown } } }).tokenizer?.ggml?.tokens;
  return Array.isArray(tokens) ? tokens.length : undefined;
}

function invalid(message: string): WorkerFailure {
  return new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST, message, false);
}
