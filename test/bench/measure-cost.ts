/**
 * What a setup's processes spend, read from /proc before and after a phase:
 *   - per request: many short streams (one token each) at a fixed
 *     concurrency; CPU ms per request, party by party and summed, and the
 *     requests completed per second;
 *   - per token: `streams` concurrent streams of `tokens` tokens; tokens/s
 *     delivered to the clients and CPU seconds per million tokens.
 * Figures are flat keys ("request.cpu_ms.core"), so passes take medians.
 */
import type { Setup } from "./bench-setups.js";
import { cpuReading, difference } from "./proc-stats.js";
import { pool, type Figures } from "./stats.js";

/** `key.<role>` for each party's share and `key` for their sum, each scaled by `scale`. */
function perParty(key: string, spent: Map<string, number>, scale: number): Figures {
  const out: Figures = {};
  let sum = 0;
  for (const [role, seconds] of spent) {
    out[`${key}.${role}`] = seconds * scale;
    sum += seconds * scale;
  }
  out[key] = sum;
  return out;
}

export async function measureRequestCost(setup: Setup, requests: number, concurrency: number): Promise<Figures> {
  const before = cpuReading(setup.parties);
  const t0 = performance.now();
  await pool(requests, concurrency, () => setup.stream(1));
  const secs = (performance.now() - t0) / 1000;
  const spent = difference(before, cpuReading(setup.parties));
  return { "request.per_s": requests / secs, ...perParty("request.cpu_ms", spent, 1000 / requests) };
}

export async function measureTokenCost(setup: Setup, streams: number, tokens: number): Promise<Figures> {
  const before = cpuReading(setup.parties);
  const t0 = performance.now();
  const runs = await pool(streams, streams, () => setup.stream(tokens));
  const secs = (performance.now() - t0) / 1000;
  const spent = difference(before, cpuReading(setup.parties));
  const delivered = runs.reduce((n, r) => n + r.tokens, 0);
  return { "stream.tokens_per_s": delivered / secs, ...perParty("stream.cpu_s_per_1m", spent, 1_000_000 / delivered) };
}
