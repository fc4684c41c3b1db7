// What the supervisor tests share: a real fake engine process (a copy of
// test/fakes/fake-engine-process.ts that plain node runs), a supervisor
// around it with test-sized timers, and ways to watch its health.
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test, { type ExecutionContext } from "ava";
import { logCapture } from "../../support/log-capture.js";
import type { WorkerHealth } from "../../../contracts/gen/llama_orch/v1/worker.js";
import type { ProbeResult } from "../../../workers/engine/health-poller.js";
import { EngineSupervisor, type SupervisorOptions } from "../../../workers/supervisor/engine-supervisor.js";
import { joinCommand } from "../../../workers/supervisor/shell-words.js";

const FAKE_ENGINE_SOURCE = fileURLToPath(new URL("../../fakes/fake-engine-process.ts", import.meta.url));

/**
 * The fake engine is JavaScript-compatible TypeScript; copied to a .mjs file it
 * runs on plain node, which starts several times faster than `--import tsx`
 * (every restart in these tests is a real process start).
 */
const fakeDir = mkdtempSync(join(tmpdir(), "llorch-fake-engine-"));

/** Puts the fake engine where fakeCommand() finds it for the calling test file's tests, and removes it after them. */
export function useFakeEngine(): void {
  test.before(() => copyFileSync(FAKE_ENGINE_SOURCE, join(fakeDir, "fake-engine-process.mjs")));
  test.after.always(() => rmSync(fakeDir, { recursive: true, force: true }));
}

export function freePort(): Promise<number> {
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
export function fakeCommand(port: number, flags: Record<string, string | number | true> = {}): string {
  const args = Object.entries(flags).flatMap(([k, v]) => (v === true ? [`--${k}`] : [`--${k}`, String(v)]));
  // Relative to cwd (fakeDir), which the supervisor passes on to the process.
  return joinCommand([process.execPath, "fake-engine-process.mjs", "--port", String(port), ...args]);
}

/** GET /health the way an adapter would probe llama-server: 200 ready, 429/408 busy, 503 loading. */
export function httpProbe(port: number): (signal: AbortSignal) => Promise<ProbeResult> {
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
export function scriptedProbe(inner: (signal: AbortSignal) => Promise<ProbeResult>) {
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

export interface Harness {
  sup: EngineSupervisor;
  port: number;
  lines: Record<string, unknown>[];
  /** Every health change, with the time it was seen. */
  changes: Array<WorkerHealth & { at: number }>;
  events(name: string): Record<string, unknown>[];
}

export async function harness(
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
export function until(
  sup: EngineSupervisor,
  predicate: (h: WorkerHealth) => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<WorkerHealth> {
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

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export { processIsAlive as pidAlive } from "../../../contracts/runtime/process-alive.js";

export function tempFile(t: ExecutionContext, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), "llorch-supervisor-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, name);
}
