import test from "ava";
import { logCapture } from "../../support/log-capture.js";
import { EngineSupervisor } from "../../../workers/supervisor/engine-supervisor.js";
import { harness, pidAlive, scriptedProbe, sleep, tempFile, until, useFakeEngine } from "./supervisor-harness.js";

useFakeEngine();

test("preload: not Ready while the engine loads; start() resolves only once it is Ready", async (t) => {
  const h = await harness(t, { "load-ms": 400 });
  const t0 = Date.now();
  const started = h.sup.start();
  t.false(h.sup.health().ready);
  t.regex(h.sup.health().lastError, /^starting/);
  t.is(typeof h.sup.pid, "number");
  await until(h.sup, (x) => x.lastError.includes("Loading model"), "the engine to report loading");
  t.false(h.sup.health().ready);
  t.true(h.sup.health().live, "a loading engine answers: live, not ready");
  await started;
  const elapsed = Date.now() - t0;
  t.true(elapsed >= 400, `start() resolved after ${elapsed} ms, before the 400 ms load`);
  t.deepEqual(h.sup.health(), { live: true, ready: true, lastError: "" });
  const firstReady = h.changes.findIndex((c) => c.ready);
  t.is(firstReady, h.changes.length - 1, "Ready is the last change, never before");
  t.true(h.changes[firstReady]!.at - t0 >= 400);
  const [ready] = h.events("engine_ready");
  t.true((ready!.load_ms as number) >= 400);
  t.is(h.sup.restarts, 0);
});

test("a crash makes it not Ready at once with the exit code and stderr tail, then it restarts after backoff and is Ready again", async (t) => {
  const counter = tempFile(t, "crashes");
  const h = await harness(
    t,
    { "load-ms": 100, "crash-after-ms": 700, "exit-code": 3, "crash-count-file": counter, "max-crashes": 1 },
    { backoff: { initialMs: 150, maxMs: 1_000, factor: 2, jitter: 0 } },
  );
  await h.sup.start();
  const firstPid = h.sup.pid!;
  t.true(h.sup.health().ready);

  const down = await until(h.sup, (x) => !x.ready, "the crash");
  const downAt = Date.now();
  t.false(down.live);
  t.regex(down.lastError, /engine exited with code 3/);
  const backoff = await until(h.sup, (x) => x.lastError.includes("restart 1 in 150 ms"), "the crash report");
  t.regex(backoff.lastError, /engine exited with code 3; last stderr lines:\n/);
  t.regex(backoff.lastError, /CUDA error: out of memory \(simulated\), exiting with code 3/);
  t.false(backoff.ready);
  t.false(pidAlive(firstPid));

  await until(h.sup, (x) => x.ready, "Ready after the restart");
  t.true(Date.now() - downAt >= 150 + 100, "restart waited for the backoff, then the load");
  t.is(h.sup.restarts, 1);
  t.not(h.sup.pid, firstPid);
  t.true(pidAlive(h.sup.pid!));
  t.true(
    h.changes.some((c) => !c.ready && c.lastError.startsWith("starting (restart 1 after: engine exited with code 3)")),
    "while the restarted engine loads, health says so",
  );
  const [exited] = h.events("engine_exited");
  t.like(exited, { exit_code: 3, restart_in_ms: 150, pid: firstPid });
  t.true((exited!.stderr_tail as string[]).some((l) => l.includes("CUDA error")));
  t.is(h.events("engine_spawned").length, 2);
});

test("repeated crashes open the circuit: no more restarts, start() rejects and lastError says why", async (t) => {
  const h = await harness(
    t,
    { "load-ms": 60_000, "crash-after-ms": 50, "exit-code": 7 },
    { breaker: { maxCrashes: 3, windowMs: 10_000 }, backoff: { initialMs: 20, maxMs: 1_000, factor: 2, jitter: 0 } },
  );
  const err = await t.throwsAsync(h.sup.start());
  t.regex(err.message, /^circuit open after 3 crashes in 10 s; last: engine exited with code 7/);
  t.is(h.sup.restarts, 2);
  t.is(h.sup.phase, "circuit-open");
  const health = h.sup.health();
  t.false(health.ready);
  t.false(health.live);
  t.regex(health.lastError, /circuit open after 3 crashes in 10 s/);
  t.regex(health.lastError, /CUDA error/);
  t.deepEqual(
    h.events("engine_exited").map((e) => e.restart_in_ms),
    [20, 40],
    "backoff doubles while the engine never became Ready",
  );
  t.is(h.events("engine_circuit_open").length, 1);
  await sleep(300);
  t.is(h.sup.restarts, 2, "no restart after the circuit opened");
  t.is(h.sup.pid, undefined);
  t.is(h.events("engine_spawned").length, 3);
});

test("with crashFailsStart a crash before the first Ready fails start() at once, without a restart", async (t) => {
  const h = await harness(t, { "load-ms": 60_000, "crash-after-ms": 50, "exit-code": 7 }, { crashFailsStart: true });
  const err = await t.throwsAsync(h.sup.start());
  t.regex(err.message, /^engine exited with code 7; last stderr lines:/);
  t.is(h.sup.phase, "failed");
  t.is(h.sup.restarts, 0);
  t.is(h.sup.pid, undefined);
  t.like(h.sup.health(), { live: false, ready: false });
  await sleep(200);
  t.is(h.events("engine_spawned").length, 1, "never restarted");
  t.is(h.events("engine_start_failed").length, 1);
});

test("the backoff starts over once the engine stayed Ready for backoffResetMs", async (t) => {
  const counter = tempFile(t, "crashes");
  const h = await harness(
    t,
    { "crash-after-ms": 500, "crash-count-file": counter, "max-crashes": 2 },
    { backoff: { initialMs: 100, maxMs: 5_000, factor: 4, jitter: 0 }, backoffResetMs: 100 },
  );
  await h.sup.start();
  await until(h.sup, () => h.sup.restarts === 2 && h.sup.phase === "running", "the second restart to be Ready");
  t.deepEqual(
    h.events("engine_exited").map((e) => e.restart_in_ms),
    [100, 100],
    "without the reset the second delay would be 400",
  );
});

test("one failed or slow probe does not flip Ready; failureThreshold consecutive failures do; no log line per probe", async (t) => {
  let scripted!: ReturnType<typeof scriptedProbe>;
  const h = await harness(t, {}, { thresholds: { failureThreshold: 3, probeTimeoutMs: 200 } }, (p) => (scripted = scriptedProbe(p)).probe);
  await h.sup.start();
  const linesAtReady = h.lines.length;
  const changesAtReady = h.changes.length;

  scripted.script.push("fail");
  await sleep(150);
  scripted.script.push("slow");
  await sleep(400);
  t.is(scripted.stats.injected, 2);
  t.deepEqual(h.changes.slice(changesAtReady), [], "no health change for one failed and one slow probe");
  t.true(h.sup.health().ready);

  scripted.script.push("fail", "fail", "fail");
  const down = await until(h.sup, (x) => !x.ready, "three failed probes to count");
  t.deepEqual(down, { live: false, ready: false, lastError: "injected probe failure" });
  await until(h.sup, (x) => x.ready, "recovery");
  t.is(h.sup.restarts, 0, "probe failures alone do not restart the engine");

  t.true(scripted.stats.probes >= 8, `${scripted.stats.probes} probes`);
  const logged = h.lines.slice(linesAtReady).map((l) => l.event);
  t.deepEqual(logged, ["engine_unhealthy", "engine_healthy"], "state changes only");
});

test("429 from the health endpoint counts as busy, i.e. healthy", async (t) => {
  const h = await harness(t, { "ready-status": 429 });
  await h.sup.start();
  t.deepEqual(h.sup.health(), { live: true, ready: true, lastError: "" });
  await sleep(200);
  t.true(h.sup.health().ready);
  t.is(h.changes.filter((c) => c.ready).length, 1);
});

test("stop() terminates the engine and does not restart it", async (t) => {
  const h = await harness(t);
  await h.sup.start();
  const pid = h.sup.pid!;
  t.true(pidAlive(pid));
  await h.sup.stop();
  t.false(pidAlive(pid), "the engine process is gone");
  t.deepEqual(h.sup.health(), { live: false, ready: false, lastError: "stopped" });
  await sleep(300);
  t.is(h.sup.restarts, 0);
  t.is(h.sup.pid, undefined);
  t.is(h.sup.phase, "stopped");
  t.deepEqual(h.events("engine_exited"), []);
  t.is(h.events("engine_stopped").length, 1);
  await h.sup.stop(); // idempotent
});

test("stop() sends SIGKILL when the engine ignores SIGTERM for stopGraceMs", async (t) => {
  const h = await harness(t, { "ignore-sigterm": true }, { stopGraceMs: 300 });
  await h.sup.start();
  const pid = h.sup.pid!;
  const t0 = Date.now();
  await h.sup.stop();
  t.true(Date.now() - t0 >= 290, "waited for the grace period");
  t.false(pidAlive(pid));
  t.is(h.events("engine_kill").length, 1);
});

test("start() rejects when the engine is not Ready within readyTimeoutMs, and leaves no process behind", async (t) => {
  const h = await harness(t, { "load-ms": 60_000 }, { readyTimeoutMs: 500 });
  const started = h.sup.start();
  const pid = h.sup.pid!;
  const err = await t.throwsAsync(started);
  t.regex(err.message, /^engine not Ready within 500 ms/);
  t.false(pidAlive(pid));
  t.false(h.sup.health().ready);
  t.regex(h.sup.health().lastError, /not Ready within 500 ms/);
  t.is(h.sup.phase, "failed");
  await sleep(200);
  t.is(h.sup.restarts, 0);
  t.is(h.sup.pid, undefined);
});

test("start() rejects at once when the command cannot be run, without restarting", async (t) => {
  const { logger } = logCapture();
  const sup = new EngineSupervisor({
    command: "/nonexistent/llama-server -m model.gguf",
    probe: () => Promise.resolve({ outcome: "ready" } as const),
    logger,
    backoff: { initialMs: 10, maxMs: 10, factor: 1 },
  });
  t.teardown(() => sup.stop());
  const err = await t.throwsAsync(sup.start());
  t.regex(err.message, /cannot start the engine .*ENOENT/);
  t.is(sup.restarts, 0);
  t.is(sup.phase, "failed");
  t.regex(sup.health().lastError, /ENOENT/);
});

test("stop() during preload rejects start() and ends the engine", async (t) => {
  const h = await harness(t, { "load-ms": 60_000 });
  const started = h.sup.start();
  const pid = h.sup.pid!;
  await until(h.sup, (x) => x.live, "the engine to answer");
  await h.sup.stop();
  await t.throwsAsync(started, { message: /stopped before the engine was Ready/ });
  t.false(pidAlive(pid));
  t.is(h.sup.restarts, 0);
});
