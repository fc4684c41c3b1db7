import { StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import type { TaskEnd, TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";
import { HttpError } from "../http-errors.js";
import { anthropicErrorBody, failureOf, TaskCanceledError } from "./compat-errors.js";
import { anthropicStopReason } from "./anthropic-request.js";

// Anthropic's streaming dialect: named events without ids —
// message_start, content_block_start, ping, content_block_delta*,
// content_block_stop, message_delta (stop_reason, usage), message_stop —
// or an `error` event when the task fails.

export interface MessageHead {
  id: string;
  taskId: string;
  model: string;
  /** The stop sequence to name when one ends the text (see matchedStopSequence). */
  stopSequence: (r: StopReason) => string | null;
}

/** The non-streaming Message, and the `message` of message_start (empty content, no usage yet). */
export function messageJson(head: MessageHead, text: string | undefined, end: TaskEnd | undefined) {
  return {
    id: head.id,
    type: "message",
    role: "assistant",
    model: head.model,
    content: text === undefined ? [] : [{ type: "text", text, citations: null }],
    stop_reason: end ? anthropicStopReason(end.stopReason) : null,
    stop_sequence: end ? head.stopSequence(end.stopReason) : null,
    usage: usageJson(end),
  };
}

/** Input tokens are known only at the end (the engine counts the rendered chat); until then 0, then the totals. */
function usageJson(end: TaskEnd | undefined) {
  return {
    input_tokens: end?.tokensIn ?? 0,
    output_tokens: end?.tokensOut ?? 0,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
  };
}

const frame = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/** Renders one task's event batches as Anthropic stream events; one instance per response. */
export class AnthropicEventRenderer {
  private opened = false;

  constructor(private readonly head: MessageHead) {}

  readonly render = (events: readonly TaskEvent[]): string => {
    let out = "";
    if (!this.opened) {
      this.opened = true;
      out += frame("message_start", { type: "message_start", message: messageJson(this.head, undefined, undefined) });
      out += frame("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
      out += frame("ping", { type: "ping" });
    }
    for (const ev of events) {
      const k = ev.kind;
      if (k?.$case === "tokens") {
        const text = k.tokens.texts.join("");
        if (text !== "")
          out += frame("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } });
      } else if (k?.$case === "end") {
        out += this.ending(k.end);
      } else if (k?.$case === "error") {
        const e = HttpError.of(k.error.code, k.error.message, { engine: k.error.engine, retriable: k.error.retriable });
        out += frame("error", anthropicErrorBody(failureOf(e)));
      }
    }
    return out;
  };

  private ending(end: TaskEnd): string {
    if (end.stopReason === StopReason.STOP_REASON_CANCELED) {
      return frame("error", anthropicErrorBody(failureOf(new TaskCanceledError(this.head.taskId))));
    }
    const delta = { stop_reason: anthropicStopReason(end.stopReason), stop_sequence: this.head.stopSequence(end.stopReason) };
    return (
      frame("content_block_stop", { type: "content_block_stop", index: 0 }) +
      frame("message_delta", { type: "message_delta", delta, usage: { input_tokens: end.tokensIn, output_tokens: end.tokensOut } }) +
      frame("message_stop", { type: "message_stop" })
    );
  }
}
