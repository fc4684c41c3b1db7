/**
 * Time to first token at a given concurrency: `requests` streams of
 * `tokens` tokens, at most `concurrency` open at once, each timed from its
 * first request to its first token (for llama-orch: from POST /v1/tasks).
 */
import type { Setup } from "./bench-setups.js";
import { percentile, pool, type Figures } from "./stats.js";

export async function measureTtft(setup: Setup, concurrency: number, requests: number, tokens: number): Promise<Figures> {
  const runs = await pool(requests, concurrency, () => setup.stream(tokens));
  const ttft = runs.map((r) => r.ttftMs);
  return { [`ttft.c${concurrency}.p50`]: percentile(ttft, 50), [`ttft.c${concurrency}.p99`]: percentile(ttft, 99) };
}
