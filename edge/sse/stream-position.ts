import type { TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";

/**
 * How far a client's stream has got: the last frame's seq, and the tokens
 * and results it has (counted from the indices, which are the task's own,
 * so a stream resumed with Last-Event-ID counts right too). After core restarts, a task's events are
 * numbered anew; the counts are what lets the new core resume the stream
 * without a token missing or repeated.
 */
export class StreamPosition {
  lastSeq: number;
  tokens = 0;
  results = 0;
  /** The stream's `end` or `error` went out. */
  ended = false;

  constructor(resumeAfterSeq: number | undefined) {
    this.lastSeq = resumeAfterSeq ?? 0;
  }

  /** Takes in a batch of events written to the client. */
  note(events: readonly TaskEvent[]): void {
    for (const ev of events) {
      const k = ev.kind;
      switch (k?.$case) {
        case "tokens":
          this.lastSeq = ev.seq + Math.max(0, k.tokens.texts.length - 1);
          this.tokens = k.tokens.firstIndex + k.tokens.texts.length;
          continue;
        case "embedding":
          this.results = k.embedding.index + 1;
          break;
        case "rerank":
          this.results = k.rerank.index + 1;
          break;
        case "end":
        case "error":
          this.ended = true;
          break;
        default:
          break;
      }
      this.lastSeq = ev.seq;
    }
  }
}
