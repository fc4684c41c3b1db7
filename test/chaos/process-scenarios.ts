import { TestSystem } from "../support/system.js";
import { contiguous, endingOf, openStream, sleep, submit, type ChaosRow, type Scenario } from "./chaos-kit.js";

// Processes killed and frozen mid-stream: what the client sees, and whether the
// system carries on without anyone restarting anything else.

const KEY = "chaos-key";

async function withSystem(
  workers: { replica: string; slots?: number; tokensPerSecond?: number }[],
  body: (sys: TestSystem) => Promise<ChaosRow>,
): Promise<ChaosRow> {
  const sys = await TestSystem.start({ apiKey: KEY, workers });
  try {
    return await body(sys);
  } finally {
    await sys.stop();
  }
}

/** kill -9 of the sidecar mid-stream: WORKER_RESET at once, contiguous ids, queued work moves to the other replica. */
export const killSidecar: Scenario = () =>
  withSystem(
    [
      { replica: "a", slots: 1, tokensPerSecond: 50 },
      { replica: "b", slots: 1, tokensPerSecond: 200 },
    ],
    async (sys) => {
      const running = await submit(sys, KEY, { max_tokens: 2000 });
      const s = await openStream(sys, KEY, running);
      await s.waitFor(1, "metrics");
      const victim = String(s.events.find((e) => e.event === "metrics")!.data.replica_id);
      await s.waitFor(5, "token");
      const started = Date.now();
      await sys.killWorker(victim);
      await s.done;
      const resetMs = Date.now() - started;
      const next = await openStream(sys, KEY, await submit(sys, KEY, { max_tokens: 20 }));
      await next.done;
      const held = endingOf(s.events) === "error WORKER_RESET retriable" && contiguous(s.events) && next.events.at(-1)?.event === "end";
      return {
        scenario: "kill -9 sidecar mid-stream",
        held,
        figures: `${endingOf(s.events)} ${resetMs} ms after the kill; ids contiguous: ${contiguous(s.events)}; next task: ${endingOf(next.events)}`,
      };
    },
  );

/** SIGSTOP of the sidecar mid-stream for 5 s, then SIGCONT: the stream goes on or ends typed, never a bare close. */
export const freezeSidecar: Scenario = () =>
  withSystem([{ replica: "a", slots: 1, tokensPerSecond: 50 }], async (sys) => {
    const s = await openStream(sys, KEY, await submit(sys, KEY, { max_tokens: 400 }));
    await s.waitFor(5, "token");
    sys.worker("a").proc.child.kill("SIGSTOP");
    await sleep(5000);
    sys.worker("a").proc.child.kill("SIGCONT");
    await s.done;
    const ending = endingOf(s.events);
    return {
      scenario: "SIGSTOP sidecar 5 s mid-stream",
      held: ending !== "bare close" && contiguous(s.events),
      figures: `${ending}; ${s.events.filter((e) => e.event === "token").length} token frames; ids contiguous: ${contiguous(s.events)}`,
    };
  });

/** kill -9 of the edge mid-stream: a new edge, and the client resumes with Last-Event-ID to the end with no gap. */
export const killEdge: Scenario = () =>
  withSystem([{ replica: "a", slots: 1, tokensPerSecond: 100 }], async (sys) => {
    const taskId = await submit(sys, KEY, { max_tokens: 300 });
    const s = await openStream(sys, KEY, taskId);
    // The cut connection rejects the read; that is the point.
    const cut = s.done.catch(() => undefined);
    await s.waitFor(10, "token");
    sys.edge.child.kill("SIGKILL");
    await sys.edge.exited;
    await cut;
    await sys.startEdge();
    const lastId = s.events.at(-1)!.id!;
    const resumed = await openStream(sys, KEY, taskId, lastId);
    await resumed.done;
    const all = [...s.events, ...resumed.events];
    return {
      scenario: "kill -9 edge mid-stream, resume on a new edge",
      held: contiguous(all) && all.at(-1)?.event === "end",
      figures: `${s.events.length} events before, ${resumed.events.length} after Last-Event-ID ${lastId}; ${endingOf(all)}; contiguous: ${contiguous(all)}`,
    };
  });

/** SIGSTOP of the edge for 3 s: the stream stalls and then carries on to its end. */
export const freezeEdge: Scenario = () =>
  withSystem([{ replica: "a", slots: 1, tokensPerSecond: 100 }], async (sys) => {
    const s = await openStream(sys, KEY, await submit(sys, KEY, { max_tokens: 400 }));
    await s.waitFor(5, "token");
    sys.edge.child.kill("SIGSTOP");
    await sleep(3000);
    sys.edge.child.kill("SIGCONT");
    await s.done;
    return {
      scenario: "SIGSTOP edge 3 s mid-stream",
      held: contiguous(s.events) && s.events.at(-1)?.event === "end",
      figures: `${endingOf(s.events)}; contiguous: ${contiguous(s.events)}`,
    };
  });

/** A sidecar killed and started again under the same replica id re-registers and serves. */
export const restartSidecarSameId: Scenario = () =>
  withSystem([{ replica: "a", slots: 1, tokensPerSecond: 0 }], async (sys) => {
    await sys.killWorker("a");
    const started = Date.now();
    await sys.restartWorker("a");
    await sys.waitForReadyReplicas(1);
    const readyMs = Date.now() - started;
    const s = await openStream(sys, KEY, await submit(sys, KEY, { max_tokens: 8 }));
    await s.done;
    return {
      scenario: "sidecar restarted under the same id",
      held: s.events.at(-1)?.event === "end",
      figures: `ready again ${readyMs} ms after its start; next task ${endingOf(s.events)}`,
    };
  });
