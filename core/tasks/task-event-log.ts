import type { TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";

type Kind = NonNullable<TaskEvent["kind"]>;

/**
 * A task's ordered, append-only event log: started -> (metrics | tokens)* ->
 * end | error. It is the single source every stream reads from, so a client
 * that connects late, or twice, sees the same events in the same order. Its
 * size is bounded by the task's own max_tokens; readers that fall behind cost
 * a cursor, not a copy.
 *
 * Sequence numbers count SSE frames: a token batch of n tokens spans n seqs.
 */
export class TaskEventLog {
  readonly events: TaskEvent[] = [];
  private nextSeq = 1;
  private closed = false;
  private readonly listeners = new Set<() => void>();
  private restartedAfter: number | undefined;

  get isClosed(): boolean {
    return this.closed;
  }

  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  /**
   * Set on the log of a task a restarted core recovered: its events from
   * then on are numbered after this seq, above every seq an earlier run gave
   * out, so a reader's position from an earlier run (a smaller seq) cannot
   * be mistaken for one in this log.
   */
  get numberedAfter(): number | undefined {
    return this.restartedAfter;
  }

  /** Numbers the events appended from now on after `seq` (see numberedAfter). */
  numberAfter(seq: number): void {
    if (seq < this.nextSeq) throw new RangeError(`seq ${seq} is not above the log's last seq ${this.lastSeq}`);
    this.nextSeq = seq + 1;
    this.restartedAfter = seq;
  }

  /** Appends unless the log already ended; returns whether it was appended. */
  append(kind: Kind): boolean {
    if (this.closed) return false;
    const seq = this.nextSeq;
    this.nextSeq += kind.$case === "tokens" ? Math.max(1, kind.tokens.texts.length) : 1;
    if (kind.$case === "end" || kind.$case === "error") this.closed = true;
    this.events.push({ seq, kind });
    for (const l of this.listeners) l();
    return true;
  }

  /** Called after every append (and once more implicitly via isClosed). */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Index into `events` of the first event a reader resuming after `afterSeq`
   * needs, and how many leading tokens of that event it already has.
   */
  resumePoint(afterSeq: number): { index: number; skipTokens: number } {
    // Binary search: events are in seq order.
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.events[mid]!.seq <= afterSeq) lo = mid + 1;
      else hi = mid;
    }
    const prev = this.events[lo - 1];
    if (prev && prev.kind?.$case === "tokens") {
      const covered = afterSeq - prev.seq + 1;
      if (covered < prev.kind.tokens.texts.length) return { index: lo - 1, skipTokens: covered };
    }
    return { index: lo, skipTokens: 0 };
  }
}

/** The event with its first `skip` tokens removed (for resuming mid-batch). */
export function withoutLeadingTokens(event: TaskEvent, skip: number): TaskEvent {
  if (skip === 0 || event.kind?.$case !== "tokens") return event;
  const { firstIndex, texts } = event.kind.tokens;
  return {
    seq: event.seq + skip,
    kind: { $case: "tokens", tokens: { firstIndex: firstIndex + skip, texts: texts.slice(skip) } },
  };
}
