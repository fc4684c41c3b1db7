/**
 * What open streams cost in memory: the engine holds every stream after its
 * first token (hangAfter), `count` streams are opened and read until each
 * has its first token, and the resident set of each party is read against
 * the one before they opened; the figure is MB per 1,000 streams. Then the
 * streams are closed, their work released, and the engine told to finish
 * streams again.
 */
import { setMaxListeners } from "node:events";
import type { Setup } from "./bench-setups.js";
import type { FakeEngine } from "./fake-engine.js";
import { difference, rssReading } from "./proc-stats.js";
import type { Figures } from "./stats.js";

const SETTLE_MS = 1_000;

async function untilEngineIdle(engineUrl: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const slots = (await (await fetch(`${engineUrl}/slots`)).json()) as { is_processing: boolean }[];
    if (!slots.some((s) => s.is_processing)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the engine still runs streams the bench closed 20 s ago");
}

export async function measureOpenStreams(setup: Setup, engine: FakeEngine, count: number, tokens: number): Promise<Figures> {
  await engine.set({ hangAfter: 1 });
  const abort = new AbortController();
  setMaxListeners(Infinity, abort.signal); // one listener per stream it closes
  let opened = 0;
  let allOpen: () => void = () => {};
  const open = new Promise<void>((resolve) => (allOpen = resolve));
  const before = rssReading(setup.parties);
  const streams = Array.from({ length: count }, () =>
    setup.stream(tokens, {
      signal: abort.signal,
      onFirstToken: () => {
        if (++opened === count) allOpen();
      },
    }),
  );
  const timer = setTimeout(allOpen, 120_000);
  await open;
  clearTimeout(timer);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const grown = difference(before, rssReading(setup.parties));
  abort.abort();
  await Promise.all(streams);
  await setup.release();
  await engine.set({ hangAfter: null });
  await untilEngineIdle(engine.url);
  if (opened < count) throw new Error(`${setup.name}: only ${opened} of ${count} streams got their first token`);
  const out: Figures = {};
  let sum = 0;
  for (const [role, mb] of grown) {
    out[`open.rss_mb_per_1000.${role}`] = (mb * 1000) / count;
    sum += (mb * 1000) / count;
  }
  out["open.rss_mb_per_1000"] = sum;
  return out;
}
