import { StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import type { TaskEnd, TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";
import { HttpError } from "../http-errors.js";
import { failureOf, openAiErrorBody, TaskCanceledError } from "./compat-errors.js";

// OpenAI's streaming dialect: `data: <chunk>` frames without ids or event
// names, a last chunk with finish_reason, a usage chunk when asked for, then
// `data: [DONE]`. A failure is a `data: {"error": ...}` frame (which the SDK
// raises as an APIError) and no [DONE].

export type FinishReason = "stop" | "length";

/** max_tokens is "length"; the model's own end, a stop word and a stop sequence are all "stop". */
export function finishReasonOf(stopReason: StopReason): FinishReason {
  return stopReason === StopReason.STOP_REASON_MAX_TOKENS ? "length" : "stop";
}

export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usageOf(end: TaskEnd): OpenAiUsage {
  return { prompt_tokens: end.tokensIn, completion_tokens: end.tokensOut, total_tokens: end.tokensIn + end.tokensOut };
}

/** What differs between chat chunks and text-completion chunks. */
export interface ChunkShape {
  object: "chat.completion.chunk" | "text_completion";
  /** The opening choice, if the dialect has one (chat announces the assistant's role). */
  opening?: () => Record<string, unknown>;
  /** One choice carrying `text` (finishReason null while streaming). */
  choice: (text: string, finishReason: FinishReason | null) => Record<string, unknown>;
}

export const CHAT_CHUNKS: ChunkShape = {
  object: "chat.completion.chunk",
  opening: () => ({ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }),
  choice: (text, finishReason) => ({ index: 0, delta: finishReason ? {} : { content: text }, logprobs: null, finish_reason: finishReason }),
};

export const TEXT_CHUNKS: ChunkShape = {
  object: "text_completion",
  choice: (text, finishReason) => ({ index: 0, text, logprobs: null, finish_reason: finishReason }),
};

/** Renders one task's event batches as OpenAI chunks; one instance per response. */
export class OpenAiChunkRenderer {
  private opened = false;

  constructor(
    private readonly shape: ChunkShape,
    private readonly head: { id: string; taskId: string; model: string; created: number },
    private readonly includeUsage: boolean,
  ) {}

  readonly render = (events: readonly TaskEvent[]): string => {
    let out = "";
    if (!this.opened) {
      this.opened = true;
      if (this.shape.opening) out += this.frame([this.shape.opening()]);
    }
    for (const ev of events) {
      const k = ev.kind;
      if (k?.$case === "tokens") {
        const text = k.tokens.texts.join("");
        if (text !== "") out += this.frame([this.shape.choice(text, null)]);
      } else if (k?.$case === "end") {
        out += this.ending(k.end);
      } else if (k?.$case === "error") {
        const e = HttpError.of(k.error.code, k.error.message, { engine: k.error.engine, retriable: k.error.retriable });
        out += `data: ${JSON.stringify(openAiErrorBody(failureOf(e)))}\n\n`;
      }
    }
    return out;
  };

  private ending(end: TaskEnd): string {
    if (end.stopReason === StopReason.STOP_REASON_CANCELED) {
      return `data: ${JSON.stringify(openAiErrorBody(failureOf(new TaskCanceledError(this.head.taskId))))}\n\n`;
    }
    let out = this.frame([this.shape.choice("", finishReasonOf(end.stopReason))]);
    if (this.includeUsage) out += this.frame([], usageOf(end));
    return out + "data: [DONE]\n\n";
  }

  private frame(choices: Record<string, unknown>[], usage?: OpenAiUsage): string {
    const { id, model, created } = this.head;
    const chunk: Record<string, unknown> = { id, object: this.shape.object, created, model, choices };
    // With include_usage every chunk carries `usage`: null until the last one.
    if (this.includeUsage) chunk["usage"] = usage ?? null;
    return `data: ${JSON.stringify(chunk)}\n\n`;
  }
}
