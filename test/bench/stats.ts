/** The bench's arithmetic: percentiles of samples, medians of passes, a bounded-concurrency runner. */

export function percentile(samples: readonly number[], p: number): number {
  const s = samples.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export type Figures = Record<string, number>;

/** Figure by figure, the median over passes (a figure missing from a pass is left out of its median). */
export function medianFigures(passes: readonly Figures[]): Figures {
  const keys = new Set(passes.flatMap((p) => Object.keys(p)));
  return Object.fromEntries([...keys].map((k) => [k, median(passes.map((p) => p[k]).filter((v): v is number => v !== undefined))]));
}

/** Runs `total` jobs with at most `concurrency` in flight; resolves with their results in completion order. */
export async function pool<T>(total: number, concurrency: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) out.push(await job(next++));
    }),
  );
  return out;
}
