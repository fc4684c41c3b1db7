import { ChangeListeners } from "../change-listeners.js";

/** A claimed slot. Releasing twice is harmless, so a finally block can always release. */
export interface SlotLease {
  release(): void;
}

/**
 * The engine's concurrent generation slots, owned here and nowhere else.
 * The sidecar does not queue: when every slot is busy a submit is refused
 * (CAPACITY) and core, which has the queue, tries again or elsewhere.
 */
export class SlotPool {
  private busy = 0;
  private readonly changes = new ChangeListeners<SlotPool>();
  private size: number;

  constructor(total: number) {
    SlotPool.check(total);
    this.size = total;
  }

  get total(): number {
    return this.size;
  }

  get free(): number {
    return Math.max(0, this.size - this.busy);
  }

  /**
   * Real engines report their capacity only once they answer (llama.cpp's
   * total_slots, TGI's max_concurrent_requests); running leases are kept, and
   * a smaller pool just refuses new claims until enough are released.
   */
  resize(total: number): void {
    SlotPool.check(total);
    if (total === this.size) return;
    this.size = total;
    this.changes.emit(this);
  }

  private static check(total: number): void {
    if (!Number.isInteger(total) || total < 1) throw new Error(`a slot pool needs at least one slot, got ${total}`);
  }

  /** A lease on one slot, or undefined when none is free. */
  claim(): SlotLease | undefined {
    if (this.busy >= this.size) return undefined;
    this.busy++;
    this.changes.emit(this);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.busy--;
        this.changes.emit(this);
      },
    };
  }

  /** Called after every claim and release; returns the unsubscribe function. */
  onChange(listener: (pool: SlotPool) => void): () => void {
    return this.changes.add(listener);
  }
}
