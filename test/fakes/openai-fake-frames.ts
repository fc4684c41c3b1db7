// The SSE side of the OpenAI/vLLM fake (see openai-fake.ts for the sources):
// one stream's chunks in the flavour's shape, and the writer that sends them
// whole, in pieces or all at once.
import type http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { FakeBehaviour, FakeFlavour } from "./openai-fake-behaviour.js";

/** The SSE frames of one completion or chat stream, in the flavour's shape. */
export class ChunkFormat {
  constructor(
    private readonly flavour: FakeFlavour,
    private readonly chat: boolean,
    private readonly base: { id: string; object: string; created: number; model: string | undefined },
  ) {}

  /** One choice; `stopReason` is vLLM's stop_reason, the stop string that matched (null otherwise, and absent for OpenAI). */
  choice(text: string | undefined, finishReason: string | null, role = false, stopReason: string | null = null): object {
    const vllm = this.flavour === "vllm" ? { stop_reason: stopReason } : {};
    return this.chat
      ? {
          index: 0,
          delta: role ? { role: "assistant", content: "" } : text === undefined ? {} : { content: text },
          logprobs: null,
          finish_reason: finishReason,
          ...(this.flavour === "vllm" && finishReason !== null ? vllm : {}),
        }
      : { index: 0, text: text ?? "", logprobs: null, finish_reason: finishReason, ...vllm };
  }

  chunk(c: object): string {
    return `data: ${JSON.stringify({ ...this.base, choices: [c], ...(this.flavour === "vllm" ? { usage: null } : {}) })}\n\n`;
  }

  usage(usage: object): string {
    return `data: ${JSON.stringify({ ...this.base, choices: [], usage })}\n\n`;
  }
}

/** Writes one stream's frames as `b` says: at once, in pieces of splitBytes, or all together at the end (coalesce). */
export class SseWriter {
  private pending = "";

  constructor(
    readonly res: http.ServerResponse,
    private readonly b: FakeBehaviour,
  ) {}

  gone(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  async send(frame: string): Promise<void> {
    if (this.gone()) return;
    if (this.b.coalesce) {
      this.pending += frame;
      return;
    }
    if (this.b.splitBytes <= 0) {
      this.res.write(frame);
      return;
    }
    const bytes = Buffer.from(frame, "utf8");
    for (let i = 0; i < bytes.length && !this.gone(); i += this.b.splitBytes) {
      this.res.write(bytes.subarray(i, i + this.b.splitBytes));
      // Node sends the writes of one tick together, so every piece needs a turn of the event loop at least.
      await (this.b.splitDelayMs > 0 ? sleep(this.b.splitDelayMs) : new Promise((resolve) => setImmediate(resolve)));
    }
  }

  flush(): void {
    if (this.pending !== "" && !this.gone()) this.res.write(this.pending);
    this.pending = "";
  }
}
