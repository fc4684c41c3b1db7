// One completion on one llama.cpp sequence: tokenize (a chat through the
// model's template), reuse whatever prefix of the prompt the sequence still
// holds, sample with the task's parameters until max_tokens, the end of
// generation token, a stop string or an abort, and hand text to the sink in
// batches.
import type { LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import { StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure, type GenerationResult, type GenerationSink } from "../engine-adapter.js";
import { stopsRequested } from "../engine/sampling-support.js";
import { StopMatcher } from "../engine/stop-matcher.js";
import { chatPromptTokens } from "./embedded-chat.js";
import { evaluateOptions } from "./embedded-sampling.js";
import { IncrementalText } from "./incremental-text.js";
import type { LlamaRuntime } from "./llama-runtime.js";

export { DEFAULT_SAMPLING } from "./embedded-sampling.js";

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
  runtime: LlamaRuntime,
  sequence: LlamaContextSequence,
  /** The slot's context as announced (llama.cpp may allocate a little more; the promise is what counts). */
  contextSize: number,
  request: SubmitRequest,
  signal: AbortSignal,
  sink: GenerationSink,
): Promise<GenerationResult> {
  const model = sequence.model;
  const prompt =
    request.messages.length > 0
      ? chatPromptTokens(runtime, model, request.messages)
      : promptTokens(model, request.prompt || request.inputs.join("\n"));
  if (prompt.length + request.maxTokens > contextSize) {
    throw new WorkerFailure(
      WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST,
      `the prompt's ${prompt.length} tokens plus max_tokens ${request.maxTokens} exceed this slot's context of ${contextSize} tokens`,
      false,
    );
  }
  // The penalties read the prompt and what is generated into it.
  const history: Token[] = [...prompt];
  const options = await evaluateOptions(runtime, model, request, engineSeed(request.seed), history);
  sink.started(prompt.length);
  const input = await reusePrefix(sequence, prompt);
  const startedAt = performance.now();
  const output = new GenerationOutput(model, prompt, request, sink);
  try {
    for await (const token of sequence.evaluate(input, options)) {
      history.push(token);
      if (output.step(token, signal)) break;
    }
  } catch (err) {
    throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR, `llama.cpp failed while generating: ${(err as Error).message}`);
  }
  output.finish();
  return { stopReason: output.stopReason, tokensIn: prompt.length, decodeTimeMs: Math.round(performance.now() - startedAt) };
}

/** One generation's tokens as text: whole characters, the stop strings cut, batched to the sink; and why it ended. */
class GenerationOutput {
  stopReason = StopReason.STOP_REASON_MAX_TOKENS;
  private produced = 0;
  private readonly text: IncrementalText;
  private readonly batcher: TextBatcher;
  private readonly stops: StopMatcher | undefined;

  constructor(
    private readonly model: LlamaModel,
    prompt: readonly Token[],
    private readonly request: SubmitRequest,
    sink: GenerationSink,
  ) {
    this.text = new IncrementalText((tokens, before) => model.detokenize(tokens as Token[], false, before as Token[]), prompt);
    this.batcher = new TextBatcher(sink);
    this.stops = stopsRequested(request) ? new StopMatcher(request.sampling!.stop) : undefined;
  }

  /** Takes the next sampled token; true when the generation ends here. */
  step(token: Token, signal: AbortSignal): boolean {
    if (signal.aborted) {
      this.stopReason = StopReason.STOP_REASON_CANCELED;
      return true;
    }
    if (this.model.isEogToken(token)) {
      this.stopReason = StopReason.STOP_REASON_EOS;
      return true;
    }
    this.produced++;
    if (this.emit(this.text.push(token))) {
      this.stopReason = StopReason.STOP_REASON_STOP;
      return true;
    }
    return this.produced >= this.request.maxTokens;
  }

  /** What is still held (a character's first bytes, text that looked like a stop string) goes out, unless a stop string ended it. */
  finish(): void {
    const canceled = this.stopReason === StopReason.STOP_REASON_CANCELED;
    if (this.stopReason !== StopReason.STOP_REASON_STOP) {
      const matched = this.emit(this.text.flush());
      if (matched && !canceled) this.stopReason = StopReason.STOP_REASON_STOP;
      else if (!matched && !canceled && this.stops) this.batcher.add(this.stops.flush());
    }
    this.batcher.flush();
  }

  /** True when a stop string matched: nothing after it is emitted. */
  private emit(texts: string[]): boolean {
    if (!this.stops) {
      this.batcher.add(texts);
      return false;
    }
    const step = this.stops.pushAll(texts);
    this.batcher.add(step.texts);
    return step.stopped;
  }
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
