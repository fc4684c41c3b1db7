import { TestSystem } from "../support/system.js";
import { contiguous, endingOf, everyTokenOnce, increasing, openStream, sleep, submit, type ChaosRow, type Scenario } from "./chaos-kit.js";

// Core killed or frozen under open streams: the edge holds them, the sidecar
// keeps the generation, the journal keeps the queue.

const KEY = "chaos-core-key";

async function withSystem(edgeFlags: Record<string, string>, body: (sys: TestSystem) => Promise<ChaosRow>): Promise<ChaosRow> {
  const sys = await TestSystem.start({ apiKey: KEY, edgeFlags, workers: [{ replica: "a", slots: 1, tokensPerSecond: 50 }] });
  try {
    return await body(sys);
  } finally {
    await sys.stop();
  }
}

/** kill -9 of core mid-stream, restarted at once: the running stream and a queued task both reach their end, every token once. */
export const killCoreWithinGrace: Scenario = () =>
  withSystem({ "core-loss-grace-ms": "15000" }, async (sys) => {
    const running = await submit(sys, KEY, { max_tokens: 200 });
    const queued = await submit(sys, KEY, { max_tokens: 5 });
    const s = await openStream(sys, KEY, running);
    await s.waitFor(5, "token");
    const killedAt = Date.now();
    await sys.killCore();
    await sys.restartCore();
    const restartMs = Date.now() - killedAt;
    await s.done;
    const q = await openStream(sys, KEY, queued);
    await q.done;
    const whole = everyTokenOnce(s.events, 200);
    return {
      scenario: "kill -9 core mid-stream, restarted within the edge's grace",
      held: whole && increasing(s.events) && s.events.at(-1)?.event === "end" && q.events.at(-1)?.event === "end",
      figures: `core back ${restartMs} ms after the kill; running: ${endingOf(s.events)}, 200 tokens once each: ${whole}, ids increasing: ${increasing(s.events)}; queued: ${endingOf(q.events)}`,
    };
  });

/** kill -9 of core and no restart: past the edge's grace the stream ends with a typed, retriable CORE_UNAVAILABLE, not a bare close. */
export const killCorePastGrace: Scenario = () =>
  withSystem({ "core-loss-grace-ms": "1000" }, async (sys) => {
    const s = await openStream(sys, KEY, await submit(sys, KEY, { max_tokens: 2000 }));
    await s.waitFor(5, "token");
    const killedAt = Date.now();
    await sys.killCore();
    await s.done;
    const endedMs = Date.now() - killedAt;
    const ready = await fetch(`${sys.edgeUrl}/readyz`);
    await sys.restartCore();
    return {
      scenario: "kill -9 core, no restart within the grace (1 s)",
      held: endingOf(s.events) === "error CORE_UNAVAILABLE retriable" && contiguous(s.events) && ready.status === 503,
      figures: `${endingOf(s.events)} ${endedMs} ms after the kill; ids contiguous: ${contiguous(s.events)}; /readyz ${ready.status}`,
    };
  });

/** SIGSTOP of core for 4 s mid-stream: the stream stalls, then reaches its end with every token once. */
export const freezeCore: Scenario = () =>
  withSystem({ "core-loss-grace-ms": "15000" }, async (sys) => {
    const s = await openStream(sys, KEY, await submit(sys, KEY, { max_tokens: 300 }));
    await s.waitFor(5, "token");
    sys.pauseCore();
    await sleep(4000);
    sys.resumeCore();
    await s.done;
    const whole = everyTokenOnce(s.events, 300) && contiguous(s.events);
    return {
      scenario: "SIGSTOP core 4 s mid-stream",
      held: whole && s.events.at(-1)?.event === "end",
      figures: `${endingOf(s.events)}; 300 tokens once each: ${whole}`,
    };
  });
