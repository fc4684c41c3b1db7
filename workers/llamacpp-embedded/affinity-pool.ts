// The embedded engine's slots: llama.cpp sequences (or embedding/ranking
// contexts), each lent to one generation at a time. A sequence keeps the KV
// cache of the last session it served, so a session's next turn goes back to
// the same sequence when it is free and reuses its prompt prefix.

export interface SlotLease<T> {
  readonly slot: T;
  /** Whether this slot last served the same session (its KV cache is warm). */
  readonly warm: boolean;
  /** Gives the slot back, remembering the session it now holds; only the first call counts. */
  release(): void;
}

interface Entry<T> {
  slot: T;
  busy: boolean;
  /** The session whose KV state the slot holds, if any. */
  session: string;
  /** When it was last released: the coldest free slot is reused first. */
  releasedAt: number;
}

export class AffinityPool<T> {
  private readonly entries: Entry<T>[];
  private tick = 0;

  constructor(slots: readonly T[]) {
    this.entries = slots.map((slot) => ({ slot, busy: false, session: "", releasedAt: 0 }));
  }

  get total(): number {
    return this.entries.length;
  }

  get free(): number {
    return this.entries.filter((e) => !e.busy).length;
  }

  get slots(): readonly T[] {
    return this.entries.map((e) => e.slot);
  }

  /** The free slot that served `session` last, else the least recently used free one; undefined when all are busy. */
  claim(session: string): SlotLease<T> | undefined {
    const free = this.entries.filter((e) => !e.busy);
    const warm = session ? free.find((e) => e.session === session) : undefined;
    const entry = warm ?? free.sort((a, b) => a.releasedAt - b.releasedAt)[0];
    if (!entry) return undefined;
    entry.busy = true;
    let released = false;
    return {
      slot: entry.slot,
      warm: warm !== undefined,
      release: () => {
        if (released) return;
        released = true;
        entry.busy = false;
        entry.session = session;
        entry.releasedAt = ++this.tick;
      },
    };
  }

  /** The free slot holding `session`'s state, which the caller may clear; it forgets the session either way. */
  forget(session: string): T | undefined {
    const entry = this.entries.find((e) => e.session === session);
    if (!entry) return undefined;
    entry.session = "";
    return entry.busy ? undefined : entry.slot;
  }
}
