// --model-ttl's clock: fires once the model has been idle (no generation
// running) for the whole TTL while serving. Generations are counted here, not
// guessed from timestamps, so a long generation never counts as idle time.

export class IdleTimer {
  private running = 0;
  private armed = false;
  private timer: NodeJS.Timeout | undefined;

  /** `ttlMs` undefined: never fires (--model-ttl off). */
  constructor(
    private readonly ttlMs: number | undefined,
    private readonly onIdle: () => void,
  ) {}

  /** A generation starts: the model is not idle. */
  begin(): void {
    this.running++;
    this.clear();
  }

  /** A generation ended: the idle time starts when the last one ends. */
  end(): void {
    this.running = Math.max(0, this.running - 1);
    this.schedule();
  }

  /** The model serves: idle time counts from now (or from the last generation's end). */
  arm(): void {
    this.armed = true;
    this.schedule();
  }

  /** Loading, unloaded or stopped: nothing to unload. */
  disarm(): void {
    this.armed = false;
    this.clear();
  }

  private schedule(): void {
    this.clear();
    if (this.ttlMs === undefined || !this.armed || this.running > 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.onIdle();
    }, this.ttlMs);
    // The sidecar's servers keep the process alive; a pending unload alone must not.
    this.timer.unref();
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
