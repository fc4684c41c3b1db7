import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test, { type ExecutionContext } from "ava";
import fc from "fast-check";
import { logCapture, quietLogger } from "../../support/log-capture.js";
import type { WorkerHealth } from "../../../contracts/gen/llama_orch/v1/worker.js";
import type { ProbeResult } from "../../../workers/engine/health-poller.js";
import { backoffDelayMs } from "../../../workers/supervisor/backoff.js";
import { EngineSupervisor, type SupervisorOptions } from "../../../workers/supervisor/engine-supervisor.js";
import { joinCommand, splitCommand } from "../../../workers/supervisor/shell-words.js";

const FAKE_ENGINE_SOURCE = fileURLToPath(new URL("../../fakes/fake-engine-process.ts", import.meta.url));

/**
 * The fake engine is JavaScript-compatible TypeScript; copied to a .mjs file it
 * runs on plain node, which starts several times faster than `--import tsx`
 * (every restart in these tests is a real process start).
 */
const fakeDir = mkdtempSync(join(tmpdir(), "llorch-fake-engine-"));
test.before(() => copyFileSync(FAKE_ENGINE_SOURCE, join(fakeDir, "fake-engine-process.mjs")));
test.after.always(() => rmSync(fakeDir, { recursive: true, force: true }));

// ---- helpers ------------------------------------------------------------------


function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The fake engine's command line, as an operator would write it in the config. */
function fakeCommand(port: number, flags: Record<string, string | number | true> = {}): string {
  const args = Object.entries(flags).flatMap(([k, v]) => (v === true ? [`--${k}`] : [`--${k}`, String(v)]));
  // Relative to cwd (fakeDir), which the supervisor passes on to the process.
  return joinCommand([process.execPath, "fake-engine-process.mjs", "--port", String(port), ...args]);
}

/** GET /health the way an adapter would probe llama-server: 200 ready, 429/408 busy, 503 loading. */
function httpProbe(port: number): (signal: AbortSignal) => Promise<ProbeResult> {
  return (signal) =>
    new Promise((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port, path: "/health", agent: false, signal }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("error", reject);
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          if (status === 200) resolve({ outcome: "ready" });
          else if (status === 429 || status === 408) resolve({ outcome: "busy" });
          else if (status === 503) resolve({ outcome: "loading", detail: messageOf(body) });
          else resolve({ outcome: "down", detail: `HTTP ${status}` });
        });
      });
      req.on("error", reject);
    });
}

function messageOf(body: string): string {
  try {
    return (JSON.parse(body) as { error?: { message?: string } }).error?.message ?? body;
  } catch {
    return body;
  }
}

type Injected = "fail" | "slow";

/** A probe whose next answers a test can script: a failure, or one that never answers (times out). */
function scriptedProbe(inner: (signal: AbortSignal) => Promise<ProbeResult>) {
  const script: Injected[] = [];
  const stats = { probes: 0, injected: 0 };
  const probe = async (signal: AbortSignal): Promise<ProbeResult> => {
    stats.probes++;
    const next = script.shift();
    if (next === undefined) return inner(signal);
    stats.injected++;
    if (next === "fail") throw new Error("injected probe failure");
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    throw new Error("injected slow probe timed out");
  };
  return { probe, script, stats };
}

interface Harness {
  sup: EngineSupervisor;
  port: number;
  lines: Record<string, unknown>[];
  /** Every health change, with the time it was seen. */
  changes: Array<WorkerHealth & { at: number }>;
  events(name: string): Record<string, unknown>[];
}

async function harness(
  t: ExecutionContext,
  flags: Record<string, string | number | true> = {},
  options: Partial<SupervisorOptions> = {},
  wrapProbe: (p: (s: AbortSignal) => Promise<ProbeResult>) => (s: AbortSignal) => Promise<ProbeResult> = (p) => p,
): Promise<Harness> {
  const port = await freePort();
  const { logger, lines } = logCapture();
  const sup = new EngineSupervisor({
    command: fakeCommand(port, flags),
    cwd: fakeDir,
    probe: wrapProbe(httpProbe(port)),
    logger,
    pollIntervalMs: 25,
    readyTimeoutMs: 15_000,
    backoff: { initialMs: 50, maxMs: 1_000, factor: 2, jitter: 0 },
    stopGraceMs: 2_000,
    ...options,
  });
  const changes: Harness["changes"] = [];
  sup.onHealthChange((h) => changes.push({ ...h, at: Date.now() }));
  t.teardown(() => sup.stop());
  return { sup, port, lines, changes, events: (name) => lines.filter((l) => l.event === name) };
}

/** Resolves with the supervisor's health once `predicate` holds (now or after a change). */
function until(sup: EngineSupervisor, predicate: (h: WorkerHealth) => boolean, what: string, timeoutMs = 10_000): Promise<WorkerHealth> {
  return new Promise((resolve, reject) => {
    if (predicate(sup.health())) return resolve(sup.health());
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${what}; health is ${JSON.stringify(sup.health())}`));
    }, timeoutMs);
    const off = sup.onHealthChange((h) => {
      if (!predicate(h)) return;
      clearTimeout(timer);
      off();
      resolve(h);
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

function tempFile(t: ExecutionContext, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), "llorch-supervisor-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, name);
}

// ---- command line and backoff ------------------------------------------------

test("splitCommand splits like a shell, with quotes and escapes, but without a shell", (t) => {
  t.deepEqual(splitCommand("llama-server -m model.gguf --port 8081"), ["llama-server", "-m", "model.gguf", "--port", "8081"]);
  t.deepEqual(splitCommand(`  engine  -m '/models/my model.gguf'\t--alias "a \\"b\\" \\\\c" x\\ y ''`), [
    "engine",
    "-m",
    "/models/my model.gguf",
    "--alias",
    'a "b" \\c',
    "x y",
    "",
  ]);
  t.deepEqual(splitCommand(`a 'b'"c"d "it's" '$HOME' "\\n"`), ["a", "bcd", "it's", "$HOME", "\\n"]);
  t.deepEqual(splitCommand("engine \\\n  --flag"), ["engine", "--flag"]);
  t.throws(() => splitCommand("engine 'unterminated"), { message: /unterminated ' quote/ });
  t.throws(() => splitCommand('engine "unterminated'), { message: /unterminated " quote/ });
  t.throws(() => splitCommand("engine \\"), { message: /trailing backslash/ });
  t.throws(() => splitCommand("   "), { message: /empty engine command/ });
  t.throws(() => splitCommand("engine > log.txt"), { message: /unquoted > .*without a shell/ });
  t.throws(() => splitCommand("engine -m $MODEL"), { message: /unquoted \$/ });
  t.throws(() => splitCommand("a | b"), { message: /unquoted \|/ });
});

test("joinCommand quotes words so that splitCommand gives them back", (t) => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: "binary" }), { minLength: 1, maxLength: 6 }), (words) => {
      t.deepEqual(splitCommand(joinCommand(words)), words);
    }),
    { numRuns: 300 },
  );
});

test("backoff grows by its factor up to the cap, with ±jitter", (t) => {
  const exact = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0 };
  t.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7, 50].map((a) => backoffDelayMs(exact, a)),
    [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000],
  );
  const jittered = { initialMs: 500, maxMs: 30_000, factor: 2 }; // default jitter ±20 %
  t.is(backoffDelayMs(jittered, 0, () => 0), 400);
  t.is(backoffDelayMs(jittered, 0, () => 0.5), 500);
  t.is(backoffDelayMs(jittered, 10, () => 0.999_999), 36_000);
  for (let i = 0; i < 200; i++) {
    const d = backoffDelayMs(jittered, 3);
    t.true(d >= 3_200 && d <= 4_800, `delay ${d}`);
  }
});

test("the constructor refuses a command it cannot run without a shell and nonsense settings", (t) => {
  const base = { probe: async () => ({ outcome: "ready" }) as const, logger: quietLogger };
  t.throws(() => new EngineSupervisor({ ...base, command: "llama-server -m model.gguf 2>&1 | tee log" }), { message: /without a shell/ });
  t.throws(() => new EngineSupervisor({ ...base, command: "engine", backoff: { initialMs: 1_000, maxMs: 10, factor: 2 } }), { message: /maxMs/ });
  t.throws(() => new EngineSupervisor({ ...base, command: "engine", readyTimeoutMs: 0 }), { message: /readyTimeoutMs/ });
  t.throws(() => new EngineSupervisor({ ...base, command: "engine", breaker: { maxCrashes: 0, windowMs: 1_000 } }), { message: /maxCrashes/ });
});

// ---- the engine process ---------------------------------------------------------

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
  t.regex(err!.message, /^circuit open after 3 crashes in 10 s; last: engine exited with code 7/);
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
  t.regex(err!.message, /^engine not Ready within 500 ms/);
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
  const sup = new EngineSupervisor({ command: "/nonexistent/llama-server -m model.gguf", probe: async () => ({ outcome: "ready" }), logger, backoff: { initialMs: 10, maxMs: 10, factor: 1 } });
  t.teardown(() => sup.stop());
  const err = await t.throwsAsync(sup.start());
  t.regex(err!.message, /cannot start the engine .*ENOENT/);
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
