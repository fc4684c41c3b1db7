import { Priority } from "../../contracts/gen/llama_orch/v1/common.js";

/**
 * A pool's bounded admission queue: FIFO within a priority class, every
 * interactive entry before any batch entry. Backed by insertion-ordered Maps,
 * so enqueue, dequeue and removal by id are O(1); only `positionOf` walks.
 */
export class PoolQueue<T> {
  private readonly interactive = new Map<string, T>();
  private readonly batch = new Map<string, T>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError("queue capacity must be a positive integer");
  }

  get size(): number {
    return this.interactive.size + this.batch.size;
  }

  sizeOf(priority: Priority): number {
    return this.classOf(priority).size;
  }

  get isFull(): boolean {
    return this.size >= this.capacity;
  }

  /** Adds at the tail of its class; false (and nothing changes) when full or id already queued. */
  enqueue(id: string, priority: Priority, item: T): boolean {
    if (this.isFull || this.has(id)) return false;
    this.classOf(priority).set(id, item);
    return true;
  }

  /**
   * Puts an entry back at the head of its class: for work that was dequeued but
   * could not start (the replica went away before accepting it). Ignores capacity
   * because the entry already held a place.
   */
  requeueFront(id: string, priority: Priority, item: T): void {
    const cls = this.classOf(priority);
    const rest = [...cls];
    cls.clear();
    cls.set(id, item);
    for (const [k, v] of rest) if (k !== id) cls.set(k, v);
  }

  peek(): T | undefined {
    return first(this.interactive) ?? first(this.batch);
  }

  dequeue(): T | undefined {
    for (const cls of [this.interactive, this.batch]) {
      for (const [id, item] of cls) {
        cls.delete(id);
        return item;
      }
    }
    return undefined;
  }

  remove(id: string): T | undefined {
    for (const cls of [this.interactive, this.batch]) {
      const item = cls.get(id);
      if (item !== undefined) {
        cls.delete(id);
        return item;
      }
    }
    return undefined;
  }

  has(id: string): boolean {
    return this.interactive.has(id) || this.batch.has(id);
  }

  /** 0-based: how many entries leave the queue before this one; undefined when absent. */
  positionOf(id: string): number | undefined {
    let i = 0;
    for (const cls of [this.interactive, this.batch]) {
      for (const k of cls.keys()) {
        if (k === id) return i;
        i++;
      }
    }
    return undefined;
  }

  /** The longest-waiting entry of a class. */
  oldestOf(priority: Priority): [string, T] | undefined {
    for (const e of this.classOf(priority)) return e;
    return undefined;
  }

  /** The most recently queued entry of a class (a walk: queues are small and this runs only when one is full). */
  newestOf(priority: Priority): [string, T] | undefined {
    let last: [string, T] | undefined;
    for (const e of this.classOf(priority)) last = e;
    return last;
  }

  /** Entries in dequeue order. */
  *entries(): IterableIterator<[string, T]> {
    yield* this.interactive;
    yield* this.batch;
  }

  private classOf(priority: Priority): Map<string, T> {
    return priority === Priority.PRIORITY_BATCH ? this.batch : this.interactive;
  }
}

function first<T>(m: Map<string, T>): T | undefined {
  for (const v of m.values()) return v;
  return undefined;
}
