// One completion on one llama.cpp sequence: tokenize, reuse whatever prefix
// of the prompt the sequence still holds, sample until max_tokens, the end of
// generation token or an abort, and hand text to the sink in batches.
import type { LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import { StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure, type GenerationResult, type GenerationSink } from "../engine-adapter.js";
import { IncrementalText } from "./incremental-text.js";

/** llama.cpp server's sampling defaults, used until tasks carry sampling parameters. */
export const DEFAULT_SAMPLING = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 } as const;

/** The prompt as the model sees it: BOS first when the model wants one; user text never becomes control tokens. */
export function promptTokens(model: LlamaModel, text: string): Token[] {
  const tokens = model.tokenize(text, false);
  const bos = model.tokens.bos;
  return model.tokens.shouldPrependBosToken && bos !== null && tokens[0] !== bos ? [bos, ...tokens] : tokens;
}

/** llama.cpp seeds are 32-bit: larger seeds fold into that range, stably. */
export function engineSeed(seed: number | undefined): number {
  if (seed === undefined) return Math.floor(Math.random() * 0xffffffff);
  return seed % 0xffffffff;
}

/**
 * Collects the texts produced within one turn of the event loop and hands
 * them over together, so a fast engine costs one sink call (one gRPC write)
 * per batch rather than per token, and a slow one still streams every token
 * as soon as it exists.
 */
class TextBatcher {
  private pending: string[] = [];
  private scheduled = false;

  constructor(private readonly sink: GenerationSink) {}

  add(texts: readonly string[]): void {
    for (const t of texts) this.pending.push(t);
    if (this.scheduled || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const texts = this.pending;
    this.pending = [];
    this.sink.tokens(texts);
  }
}

export async function generateOnSequence(
  sequence: LlamaContextSequence,
  /** The slot's context as announced (llama.cpp may allocate a little more; the promise is what counts). */
  contextSize: number,
  request: SubmitRequest,
  signal: AbortSignal,
  sink: GenerationSink,
): Promise<GenerationResult> {
  const model = sequence.model;
  const prompt = promptTokens(model, request.prompt || request.inputs.join("\n"));
  if (prompt.length + request.maxTokens > contextSize) {
    throw new WorkerFailure(
      WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST,
      `the prompt's ${prompt.length} tokens plus max_tokens ${request.maxTokens} exceed this slot's context of ${contextSize} tokens`,
      false,
    );
  }
  sink.started(prompt.length);
  const input = await reusePrefix(sequence, prompt);
  const text = new IncrementalText((tokens, before) => model.detokenize(tokens as Token[], false, before as Token[]), prompt);
  const batcher = new TextBatcher(sink);
  const startedAt = performance.now();
  let produced = 0;
  let stopReason = StopReason.STOP_REASON_MAX_TOKENS;
  const tokens = sequence.evaluate(input, { ...DEFAULT_SAMPLING, seed: engineSeed(request.seed), yieldEogToken: true });
  try {
    for await (const token of tokens) {
      if (signal.aborted) {
        stopReason = StopReason.STOP_REASON_CANCELED;
        break;
      }
      if (model.isEogToken(token)) {
        stopReason = StopReason.STOP_REASON_EOS;
        break;
      }
      produced++;
      batcher.add(text.push(token));
      if (produced >= request.maxTokens) break;
    }
  } catch (err) {
    throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR, `llama.cpp failed while generating: ${(err as Error).message}`);
  }
  batcher.add(text.flush());
  batcher.flush();
  return { stopReason, tokensIn: prompt.length, decodeTimeMs: Math.round(performance.now() - startedAt) };
}

/**
 * Keeps the part of the sequence's KV cache that matches the prompt (a
 * session's earlier turns) and returns the tokens still to evaluate: at least
 * the last one, whose logits the first new token is sampled from.
 */
async function reusePrefix(sequence: LlamaContextSequence, prompt: Token[]): Promise<Token[]> {
  await sequence.adaptStateToTokens(prompt.slice(0, -1), false);
  return prompt.slice(sequence.nextTokenIndex);
}
