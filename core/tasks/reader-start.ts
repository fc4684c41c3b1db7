import type { TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";
import { withoutLeadingTokens, type TaskEventLog } from "./task-event-log.js";

/** How many tokens and results a reader already has. */
export interface ReaderHas {
  tokens: number;
  results: number;
}

/** Where a reader resumes in a task's log, and, for a reader from an earlier run of core, what it already has. */
export interface ReaderStart {
  index: number;
  /** Leading tokens of the event at `index` that the reader has. */
  skipTokens: number;
  /** Set for a reader positioned in an earlier run's numbering: events are filtered by what it has instead. */
  has?: ReaderHas;
}

/**
 * Where a StreamTask reader starts. A seq this run gave out resumes right
 * after it. A seq at or below the span a recovered log is numbered after
 * comes from an earlier run of core, whose numbering this log does not
 * share: the reader then gets this run's events after `started`, less the
 * tokens and results it says it has.
 */
export function readerStart(
  log: TaskEventLog,
  request: { resumeAfterSeq?: number; tokensReceived?: number; resultsReceived?: number },
): ReaderStart {
  const after = request.resumeAfterSeq ?? 0;
  const restart = log.numberedAfter;
  if (restart === undefined || after === 0 || after > restart) return log.resumePoint(after);
  return {
    index: log.resumePoint(restart).index,
    skipTokens: 0,
    has: { tokens: request.tokensReceived ?? 0, results: request.resultsReceived ?? 0 },
  };
}

/** The part of `event` a reader that has `has` still lacks; undefined when it has all of it. */
export function unseenPart(event: TaskEvent, has: ReaderHas): TaskEvent | undefined {
  const k = event.kind;
  switch (k?.$case) {
    case "tokens": {
      const skip = has.tokens - k.tokens.firstIndex;
      if (skip <= 0) return event;
      return skip >= k.tokens.texts.length ? undefined : withoutLeadingTokens(event, skip);
    }
    case "embedding":
      return k.embedding.index < has.results ? undefined : event;
    case "rerank":
      return k.rerank.index < has.results ? undefined : event;
    default:
      return event;
  }
}
