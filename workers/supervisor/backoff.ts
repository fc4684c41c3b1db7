/** Restart delays: capped exponential growth with proportional jitter. */
export interface BackoffPolicy {
  /** Delay before the first restart. */
  initialMs: number;
  /** Ceiling of the exponential part, before jitter. */
  maxMs: number;
  /** Growth per consecutive restart, e.g. 2 (doubling). */
  factor: number;
  /** Spread as a fraction of the delay: 0.2 gives ±20 %. Default 0.2; 0 makes delays exact. */
  jitter?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffPolicy> = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 };

/**
 * Delay before restart number `attempt` (0-based since the last reset):
 * min(maxMs, initialMs × factor^attempt), then spread by ±jitter so that
 * engines that crashed together (a shared GPU, a shared disk) do not restart
 * in lockstep. `random` returns [0, 1), as Math.random.
 */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(Math.floor(attempt), 0), 1_000);
  const base = Math.min(policy.maxMs, policy.initialMs * policy.factor ** exponent);
  const jitter = policy.jitter ?? DEFAULT_BACKOFF.jitter;
  return Math.max(0, Math.round(base * (1 + jitter * (2 * random() - 1))));
}

/** Throws RangeError unless the policy makes sense (positive, non-shrinking, jitter in [0, 1)). */
export function validateBackoff(policy: BackoffPolicy): void {
  const { initialMs, maxMs, factor } = policy;
  const jitter = policy.jitter ?? DEFAULT_BACKOFF.jitter;
  if (!(Number.isFinite(initialMs) && initialMs >= 0)) throw new RangeError(`backoff.initialMs must be a number >= 0, got ${initialMs}`);
  if (!(Number.isFinite(maxMs) && maxMs >= initialMs))
    throw new RangeError(`backoff.maxMs must be >= initialMs (${initialMs}), got ${maxMs}`);
  if (!(Number.isFinite(factor) && factor >= 1)) throw new RangeError(`backoff.factor must be >= 1, got ${factor}`);
  if (!(Number.isFinite(jitter) && jitter >= 0 && jitter < 1)) throw new RangeError(`backoff.jitter must be in [0, 1), got ${jitter}`);
}
