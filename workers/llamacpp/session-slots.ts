// Which llama.cpp server slot holds which session's KV cache, as far as this
// adapter can tell from its own completions, and so which slot to pin a
// session's next completion to (`id_slot`) and which to erase when the
// session is evicted. llama.cpp defers a completion pinned to a slot that is
// processing until the slot is free (server-context.cpp,
// process_single_task), so a completion is pinned only when no completion of
// ours can be on that slot: none pinned to it, and none running that asked
// for any slot (its slot is known only from its final frame). Otherwise it
// asks for any idle slot (-1), where llama.cpp's own choice (the slot whose
// cached prompt matches best) still tends to find the session's cache.

export interface SlotClaim {
  /** id_slot to send: the session's slot, or -1. */
  idSlot: number;
  /**
   * Once, when the completion is over: the slot its final frame named and
   * the tokens cached there, or undefined when it failed or was cancelled
   * (then a pinned slot still holds the session, partly; where an unpinned
   * one ran is unknown).
   */
  finish(served: { slot: number; tokens: number | undefined } | undefined): void;
}

interface Holder {
  sessionId: string;
  /** tokens_cached of the completion that left it; undefined when that completion did not end normally. */
  tokens: number | undefined;
  /** Order of completions: the latest slot of a session is the one to pin. */
  seq: number;
}

/**
 * Owned by one adapter; bounded by the engine's slot count (one holder per
 * slot: a slot holds whatever its last completion processed).
 */
export class SessionSlots {
  private readonly holders = new Map<number, Holder>();
  private readonly pinned = new Set<number>();
  /** Our running completions that asked for any slot. */
  private unplaced = 0;
  private seq = 0;

  /** A slot for one completion of `sessionId` ("" for none) on an engine of `slotCount` slots (0: not known yet, never pin). */
  claim(sessionId: string, slotCount: number): SlotClaim {
    const latest = sessionId === "" ? undefined : this.latestOf(sessionId);
    const pin = latest !== undefined && latest < slotCount && !this.pinned.has(latest) && this.unplaced === 0 ? latest : undefined;
    if (pin !== undefined) this.pinned.add(pin);
    else this.unplaced++;
    let finished = false;
    return {
      idSlot: pin ?? -1,
      finish: (served) => {
        if (finished) return;
        finished = true;
        if (pin !== undefined) this.pinned.delete(pin);
        else this.unplaced--;
        const slot = served?.slot ?? pin;
        if (slot === undefined || slot >= slotCount) return;
        if (sessionId === "") this.holders.delete(slot);
        else this.holders.set(slot, { sessionId, tokens: served?.tokens, seq: ++this.seq });
      },
    };
  }

  /** Slots that hold (part of) the session's cache, latest first. */
  slotsOf(sessionId: string): number[] {
    return [...this.holders.entries()]
      .filter(([, h]) => h.sessionId === sessionId)
      .sort(([, a], [, b]) => b.seq - a.seq)
      .map(([slot]) => slot);
  }

  /** Tokens the engine reported cached for the session, over its slots; undefined when none is known. */
  tokensOf(sessionId: string): number | undefined {
    let sum: number | undefined;
    for (const h of this.holders.values()) if (h.sessionId === sessionId && h.tokens !== undefined) sum = (sum ?? 0) + h.tokens;
    return sum;
  }

  /** `slot` was erased for `sessionId`; unless another completion has taken it since, it holds nothing now. */
  erased(slot: number, sessionId: string): void {
    if (this.holders.get(slot)?.sessionId === sessionId) this.holders.delete(slot);
  }

  /** The engine restarted or changed its slots: nothing it cached is there any more. */
  clear(): void {
    this.holders.clear();
  }

  private latestOf(sessionId: string): number | undefined {
    return this.slotsOf(sessionId)[0];
  }
}
