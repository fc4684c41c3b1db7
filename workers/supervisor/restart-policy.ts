// What a crash of the engine leads to: a restart after backoff, or, when the
// engine keeps crashing, an open circuit, so a broken model or GPU does not
// turn into a restart loop that hides the cause.
import { backoffDelayMs, type BackoffPolicy } from "./backoff.js";

/** maxCrashes crashes within windowMs open the circuit. */
export interface BreakerPolicy {
  maxCrashes: number;
  windowMs: number;
}

export type CrashVerdict =
  { action: "restart"; delayMs: number; crashesInWindow: number } | { action: "circuit-open"; crashesInWindow: number };

/** Owns the crash window and the count of restarts since the backoff was last reset. */
export class RestartPolicy {
  /** Consecutive restarts since the backoff was last reset. */
  private attempt = 0;
  /** Times of recent crashes, for the breaker. */
  private crashTimes: number[] = [];

  constructor(
    private readonly backoff: Required<BackoffPolicy>,
    private readonly breaker: BreakerPolicy,
    /** A process that stayed Ready this long restarts after backoff.initialMs again. */
    private readonly backoffResetMs: number,
  ) {}

  /** A fresh start(): no crashes remembered, the first restart waits backoff.initialMs. */
  reset(): void {
    this.attempt = 0;
    this.crashTimes = [];
  }

  /** Counts a crash at `now` of a process that was Ready since `readyAt` (if ever) and decides what follows. */
  crashed(now: number, readyAt: number | undefined): CrashVerdict {
    if (readyAt !== undefined && now - readyAt >= this.backoffResetMs) this.attempt = 0;
    this.crashTimes = this.crashTimes.filter((t) => t > now - this.breaker.windowMs);
    this.crashTimes.push(now);
    const crashesInWindow = this.crashTimes.length;
    if (crashesInWindow >= this.breaker.maxCrashes) return { action: "circuit-open", crashesInWindow };
    return { action: "restart", delayMs: backoffDelayMs(this.backoff, this.attempt++), crashesInWindow };
  }
}
