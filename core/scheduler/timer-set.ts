/** The scheduler's timers, so shutdown can stop every one of them at once. */
export class TimerSet {
  private readonly timers = new Set<NodeJS.Timeout>();

  /** Runs `fn` every `ms`; does not keep the process alive. */
  every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.add(t);
  }

  /** Runs `fn` once after `ms`; `unref` lets the process exit before it fires. */
  later(ms: number, fn: () => void, unref = false): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    if (unref) t.unref();
    this.timers.add(t);
  }

  clearAll(): void {
    for (const t of this.timers) clearTimeout(t);
  }
}
