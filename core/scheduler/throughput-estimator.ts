/**
 * Online estimates of how fast each replica decodes, learned from the tasks it
 * finishes: exponentially weighted means of time to first token and of
 * milliseconds per token, and of the spread of the latter. Predictions adapt
 * as replicas speed up or slow down; before any measurement they are
 * undefined, and callers treat "unknown" as unknown rather than as zero cost.
 */
export class ThroughputEstimator {
  private readonly perReplica = new Map<string, ReplicaStats>();
  /** Weight of the newest sample; 0.2 follows changes within a handful of tasks. */
  constructor(private readonly alpha = 0.2) {}

  record(replicaId: string, sample: { firstTokenMs: number; tokens: number; decodeMs: number }): void {
    if (sample.tokens <= 0 || sample.decodeMs < 0) return;
    const msPerToken = Math.max(0, sample.decodeMs - sample.firstTokenMs) / Math.max(1, sample.tokens - 1);
    const s = this.perReplica.get(replicaId);
    if (!s) {
      this.perReplica.set(replicaId, { firstTokenMs: sample.firstTokenMs, msPerToken, msPerTokenVar: 0, samples: 1 });
      return;
    }
    const a = this.alpha;
    const diff = msPerToken - s.msPerToken;
    s.msPerToken += a * diff;
    // Exponentially weighted variance (West's update) for the on-time probability.
    s.msPerTokenVar = (1 - a) * (s.msPerTokenVar + a * diff * diff);
    s.firstTokenMs += a * (sample.firstTokenMs - s.firstTokenMs);
    s.samples++;
  }

  forget(replicaId: string): void {
    this.perReplica.delete(replicaId);
  }

  /** Predicted time from dispatch to the last of `tokens` tokens, over the given replicas; undefined if none was measured. */
  predictDurationMs(replicaIds: readonly string[], tokens: number): number | undefined {
    let sum = 0;
    let n = 0;
    for (const id of replicaIds) {
      const s = this.perReplica.get(id);
      if (!s) continue;
      sum += s.firstTokenMs + s.msPerToken * Math.max(0, tokens - 1);
      n++;
    }
    return n === 0 ? undefined : sum / n;
  }

  /** Relative spread (coefficient of variation) of per-token time; a floor keeps probabilities humble. */
  relativeSpread(replicaIds: readonly string[]): number {
    let cv = 0;
    let n = 0;
    for (const id of replicaIds) {
      const s = this.perReplica.get(id);
      if (!s || s.msPerToken <= 0) continue;
      cv += Math.sqrt(s.msPerTokenVar) / s.msPerToken;
      n++;
    }
    return Math.max(0.1, n === 0 ? 0 : cv / n);
  }
}

interface ReplicaStats {
  firstTokenMs: number;
  msPerToken: number;
  msPerTokenVar: number;
  samples: number;
}

/**
 * When would the task at `position` in a queue start? Slots free up as
 * running work finishes (`busyRemainingMs`, one per busy slot); idle slots are
 * free now; each task ahead takes the earliest free slot for its predicted
 * duration. Greedy earliest-slot simulation, O(n log slots).
 */
export function predictStartMs(opts: { slots: number; busyRemainingMs: readonly number[]; aheadDurationsMs: readonly number[] }): number {
  return predictQueueStartsMs({ ...opts, durationsMs: [...opts.aheadDurationsMs, 0] }).at(-1)!;
}

/** The same simulation for a whole queue at once: the predicted start of every entry, in queue order. */
export function predictQueueStartsMs(opts: {
  slots: number;
  busyRemainingMs: readonly number[];
  durationsMs: readonly number[];
}): number[] {
  if (opts.slots <= 0) return opts.durationsMs.map(() => Infinity);
  const heap = new MinHeap();
  for (let i = 0; i < opts.slots; i++) heap.push(opts.busyRemainingMs[i] ?? 0);
  return opts.durationsMs.map((d) => {
    const start = heap.pop();
    heap.push(start + d);
    return start;
  });
}

/**
 * P(finish by the deadline) under a normal model of the remaining time, whose
 * spread grows with the time still to go.
 */
export function onTimeProbability(remainingMs: number, slackMs: number, relativeSpread: number): number {
  const sigma = Math.max(50, relativeSpread * remainingMs);
  return clamp01(normalCdf((slackMs - remainingMs) / sigma));
}

function clamp01(x: number): number {
  return Math.round(Math.min(1, Math.max(0, x)) * 1000) / 1000;
}

/** Abramowitz-Stegun 7.1.26 approximation of the standard normal CDF (error < 1.5e-7). */
function normalCdf(z: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(z / Math.SQRT2));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-(z * z) / 2);
  return z >= 0 ? (1 + y) / 2 : (1 - y) / 2;
}

class MinHeap {
  private readonly a: number[] = [];
  push(v: number): void {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= v) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = v;
  }
  pop(): number {
    const a = this.a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const c = l + 1 < a.length && a[l + 1]! < a[l]! ? l + 1 : l;
        if (a[c]! >= last) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}
