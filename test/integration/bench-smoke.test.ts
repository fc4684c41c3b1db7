// The bench's own machinery, small: the fake engine as its own process
// (paced, counted tokens, behaviour over IPC), llama-orch in front of it as
// the bench starts it, and the bench's checked clients. Asserts what the
// streams carried and what the bench would report, never how fast.
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BenchProcesses } from "../bench/bench-procs.js";
import { directSetup, orchSetup } from "../bench/bench-setups.js";
import { ExactnessLedger } from "../bench/exactness.js";
import { startFakeEngine } from "../bench/fake-engine.js";
import { measureOpenStreams } from "../bench/measure-open-streams.js";
import { startOrch } from "../bench/orch-stack.js";

test("direct and llama-orch streams are exact, an engine failure is reported, and held streams are released", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "llorch-bench-smoke-"));
  const procs = new BenchProcesses(dir);
  t.teardown(async () => {
    await procs.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });
  const ledger = new ExactnessLedger();
  const engine = await startFakeEngine(procs, { tokens: 300, slots: 8, ctx: 4096 });
  const stack = await startOrch(procs, { prefix: "", engineUrl: engine.url, slots: 8, transcripts: "on" });
  const setups = [directSetup(engine.url, ledger), orchSetup(stack, ledger)];

  for (const setup of setups) {
    const runs = await Promise.all([300, 1, 16, 300].map((n) => setup.stream(n)));
    t.deepEqual(
      runs.map((r) => [r.tokens, r.problem]),
      [
        [300, undefined],
        [1, undefined],
        [16, undefined],
        [300, undefined],
      ],
      setup.name,
    );
  }
  t.deepEqual(Object.fromEntries(ledger.checked), { direct: 4, "llama-orch": 4 });
  t.deepEqual(ledger.problems, []);

  await engine.set({ failAfter: { tokens: 5, message: "engine fell over" } });
  for (const setup of setups) {
    const r = await setup.stream(16);
    t.is(r.tokens, 5, setup.name);
    t.regex(r.problem ?? "", /error frame/, setup.name);
  }
  t.is(ledger.problems.length, 2);
  await engine.set({ failAfter: null });

  // Held streams: all open at once, then closed and released, so the engine ends up idle (measureOpenStreams waits for that).
  for (const setup of setups) {
    const f = await measureOpenStreams(setup, engine, 6, 300);
    t.true(Number.isFinite(f["open.rss_mb_per_1000"]), setup.name);
  }
  t.is((await setups[1]!.stream(16)).problem, undefined, "the stack serves again after the held streams");
});
