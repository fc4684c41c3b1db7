// The pool-manager part of a sidecar: it owns the engine process. It starts
// the engine, reports Ready only once the engine's own health probe says the
// model is loaded (preload), notices when the process dies, restarts it with
// capped exponential backoff, and stops restarting when the engine keeps
// crashing (circuit breaker), so a broken model or GPU does not turn into a
// restart loop that hides the cause.
import { spawn, type ChildProcess } from "node:child_process";
import type { Logger } from "../../contracts/runtime/logger.js";
import type { WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import { ChangeListeners } from "../change-listeners.js";
import { HealthPoller, type ProbeResult } from "../engine/health-poller.js";
import { backoffDelayMs, DEFAULT_BACKOFF, validateBackoff, type BackoffPolicy } from "./backoff.js";
import { OutputTail } from "./output-tail.js";
import { joinCommand, splitCommand } from "./shell-words.js";

export interface SupervisorOptions {
  /**
   * The engine's command line, e.g. "llama-server -m model.gguf --port 8081".
   * Split into words (quotes supported, see splitCommand) and spawned WITHOUT
   * a shell, in its own process group.
   */
  command: string;
  /** Extra environment variables, on top of this process's environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** The adapter's health probe (e.g. GET /health). */
  probe: (signal: AbortSignal) => Promise<ProbeResult>;
  /** Preload: how long one start may take to become Ready. Default 10 min. */
  readyTimeoutMs?: number;
  /** Restart delays. Default 500 ms doubling to 30 s, ±20 % jitter. */
  backoff?: BackoffPolicy;
  /** After staying Ready this long, the next crash restarts after backoff.initialMs again. Default 60 s. */
  backoffResetMs?: number;
  /** maxCrashes crashes within windowMs stop the restarts ("circuit open"). Default 5 within 5 min. */
  breaker?: { maxCrashes: number; windowMs: number };
  /** stop(): SIGTERM, then SIGKILL after this long. Default 10 s. */
  stopGraceMs?: number;
  logger: Logger;
  /** Health polling interval. Default 2000 ms. */
  pollIntervalMs?: number;
  /** HealthPoller thresholds. Defaults: 3 failures to go unready, 1 success to go ready, probes time out after 5 s. */
  thresholds?: { failureThreshold?: number; successThreshold?: number; probeTimeoutMs?: number };
  /** Lines of the engine's stderr kept for crash reports. Default 20. */
  stderrTailLines?: number;
}

/** Where the supervisor is in the engine's life cycle. */
export type SupervisorPhase =
  | "idle" // constructed, start() not called yet
  | "starting" // a process runs and preloads; not Ready yet
  | "running" // the process became Ready (health follows its probes)
  | "exited" // the process died unexpectedly; collecting its last words
  | "backoff" // waiting to restart it
  | "circuit-open" // crashed too often: no more restarts
  | "failed" // start() gave up (ready timeout, cannot spawn)
  | "stopping"
  | "stopped";

/** One spawned engine process and what belongs to it. */
interface Incarnation {
  readonly child: ChildProcess;
  readonly spawnedAt: number;
  readonly stderr: OutputTail;
  /** Resolves once the process is gone (exit, or a failed spawn). */
  readonly gone: Promise<void>;
  markGone(): void;
  /** Resolves once stderr has ended (all its output read). */
  readonly stderrEnded: Promise<void>;
  poller?: HealthPoller;
  unsubscribe?: () => void;
  readyAt?: number;
  readyTimer?: NodeJS.Timeout;
  exited: boolean;
  /** Why we killed it ourselves, when we did (reported instead of "killed by SIGTERM"). */
  killReason?: string;
  terminating?: Promise<void>;
}

interface StartWaiter {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** After an exit, how long to wait for the rest of the engine's stderr before reporting the crash. */
const STDERR_DRAIN_MS = 250;
/** After SIGKILL, how long stop() waits for the process to vanish before giving up on it. */
const KILL_WAIT_MS = 5_000;
/** Cap on the stderr part of lastError. */
const LAST_ERROR_TAIL_CHARS = 2_000;
/** spawn() errors that no retry can fix: the command is wrong, not the engine. */
const PERMANENT_SPAWN_ERRORS = new Set(["ENOENT", "EACCES", "ENOTDIR", "EISDIR", "ENOEXEC", "EPERM"]);

/**
 * Starts and keeps alive one engine process. Health is WorkerHealth like an
 * adapter's: not Ready until the engine finished preloading; not Ready at once
 * when the process dies, with the cause (exit code or signal and the last
 * lines of its stderr) in lastError; Ready again only after the restarted
 * process passes its probe. While the process runs, health follows a
 * HealthPoller, so one slow or failed probe does not flap it and "busy"
 * (429/408) counts as healthy. Logs state changes only, never probes.
 */
export class EngineSupervisor {
  private readonly argv: string[];
  private readonly log: Logger;
  private readonly readyTimeoutMs: number;
  private readonly backoff: Required<BackoffPolicy>;
  private readonly backoffResetMs: number;
  private readonly breaker: { maxCrashes: number; windowMs: number };
  private readonly stopGraceMs: number;
  private readonly pollIntervalMs: number;
  private readonly listeners = new ChangeListeners<WorkerHealth>();

  private phaseNow: SupervisorPhase = "idle";
  /** lastError for phases without a running process. */
  private status = "not started";
  private healthNow: WorkerHealth = { live: false, ready: false, lastError: "not started" };
  private current: Incarnation | undefined;
  private restartCount = 0;
  /** Consecutive restarts since the backoff was last reset. */
  private attempt = 0;
  /** Times of recent crashes, for the breaker. */
  private crashTimes: number[] = [];
  /** The last crash's short cause (no stderr), shown while the restarted engine preloads. */
  private lastCrash = "";
  private restartTimer: NodeJS.Timeout | undefined;
  private startWaiter: StartWaiter | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly opts: SupervisorOptions) {
    this.argv = splitCommand(opts.command);
    this.log = opts.logger;
    this.readyTimeoutMs = positive("readyTimeoutMs", opts.readyTimeoutMs ?? 600_000);
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    validateBackoff(this.backoff);
    this.backoffResetMs = nonNegative("backoffResetMs", opts.backoffResetMs ?? 60_000);
    this.breaker = opts.breaker ?? { maxCrashes: 5, windowMs: 300_000 };
    positive("breaker.maxCrashes", this.breaker.maxCrashes);
    positive("breaker.windowMs", this.breaker.windowMs);
    this.stopGraceMs = nonNegative("stopGraceMs", opts.stopGraceMs ?? 10_000);
    this.pollIntervalMs = positive("pollIntervalMs", opts.pollIntervalMs ?? 2_000);
  }

  /** Automatic restarts after crashes so far (not counting start() calls). */
  get restarts(): number {
    return this.restartCount;
  }

  /** The engine's process id while one runs. */
  get pid(): number | undefined {
    const inc = this.current;
    return inc && !inc.exited ? inc.child.pid : undefined;
  }

  get phase(): SupervisorPhase {
    return this.phaseNow;
  }

  health(): WorkerHealth {
    return { ...this.healthNow };
  }

  /** Called on every health change; returns the unsubscribe function. */
  onHealthChange(listener: (health: WorkerHealth) => void): () => void {
    return this.listeners.add(listener);
  }

  /**
   * Spawns the engine; resolves once it first reports Ready. Rejects when it
   * is not Ready within readyTimeoutMs (crashes and restarts meanwhile count
   * against the same deadline), when the breaker opens first, when the command
   * cannot be run at all, or when stop() is called first. After a rejection
   * no engine process is left running. May be called again after stop() or a
   * failure (the breaker starts afresh).
   */
  start(): Promise<void> {
    if (!["idle", "stopped", "failed", "circuit-open"].includes(this.phaseNow)) {
      return Promise.reject(new Error(`the engine supervisor is ${this.phaseNow}; start() needs it stopped`));
    }
    if (this.current && !this.current.exited) {
      return Promise.reject(new Error(`the previous engine process (pid ${this.current.child.pid}) is still being stopped`));
    }
    this.stopping = undefined;
    this.crashTimes = [];
    this.attempt = 0;
    this.lastCrash = "";
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => void this.failStart(`engine not Ready within ${this.readyTimeoutMs} ms${this.progressNote()}`), this.readyTimeoutMs);
      this.startWaiter = { resolve, reject, timer };
    });
    this.spawnEngine();
    return ready;
  }

  /**
   * Clean shutdown: SIGTERM to the engine's process group, SIGKILL after
   * stopGraceMs; no restart afterwards. A pending start() rejects.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const waiter = this.takeStartWaiter();
    this.clearRestartTimer();
    const inc = this.current;
    this.setPhase("stopping", "stopping");
    if (inc && !inc.exited) {
      this.detachPoller(inc);
      this.log.info({ event: "engine_stopping", pid: inc.child.pid, grace_ms: this.stopGraceMs }, `stopping the engine (pid ${inc.child.pid})`);
      await this.terminate(inc);
    }
    this.current = undefined;
    this.setPhase("stopped", "stopped");
    if (inc) this.log.info({ event: "engine_stopped", pid: inc.child.pid, restarts: this.restartCount }, "engine stopped");
    waiter?.reject(new Error("the engine supervisor was stopped before the engine was Ready"));
  }

  // ---- process life cycle -------------------------------------------------

  private spawnEngine(): void {
    const [file, ...args] = this.argv as [string, ...string[]];
    const group = process.platform !== "win32";
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        cwd: this.opts.cwd,
        env: { ...process.env, ...this.opts.env },
        stdio: ["ignore", "pipe", "pipe"],
        // Its own process group: stop() reaches wrapper scripts' children too,
        // and a Ctrl-C meant for the sidecar does not hit the engine behind its back.
        detached: group,
      });
    } catch (err) {
      this.giveUp(`cannot start the engine (${joinCommand(this.argv)}): ${(err as Error).message}`);
      return;
    }
    let markGone!: () => void;
    const gone = new Promise<void>((resolve) => (markGone = resolve));
    const debug = this.log.isLevelEnabled("debug");
    const relay = (stream: string) => (line: string) => this.log.debug({ event: "engine_output", stream, pid: child.pid }, line);
    const stderr = new OutputTail(this.opts.stderrTailLines ?? 20, 500, debug ? relay("stderr") : undefined);
    const stderrEnded = new Promise<void>((resolve) => {
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (s: string) => stderr.push(s));
      child.stderr!.once("close", () => {
        stderr.end();
        resolve();
      });
    });
    // stdout is read (a full pipe would block the engine) and only relayed at debug level.
    const stdout = new OutputTail(1, 500, debug ? relay("stdout") : undefined);
    child.stdout!.setEncoding("utf8").on("data", (s: string) => stdout.push(s));

    const inc: Incarnation = { child, spawnedAt: Date.now(), stderr, gone, markGone, stderrEnded, exited: false };
    this.current = inc;
    child.once("exit", (code, signal) => this.onExit(inc, code, signal));
    child.on("error", (err: NodeJS.ErrnoException) => {
      if (child.pid === undefined) this.onSpawnError(inc, err);
      else this.log.warn({ event: "engine_process_error", pid: child.pid, err: err.message }, `engine process error: ${err.message}`);
    });
    if (child.pid === undefined) {
      // The spawn failed; the "error" event follows and reports it.
      this.setPhase("starting", "starting");
      return;
    }

    this.log.info(
      { event: "engine_spawned", pid: child.pid, command: joinCommand(this.argv), restarts: this.restartCount },
      this.restartCount === 0 ? `engine started (pid ${child.pid}), waiting for it to load` : `engine restarted (pid ${child.pid}, restart ${this.restartCount}), waiting for it to load`,
    );
    const poller = new HealthPoller({ probe: this.opts.probe, intervalMs: this.pollIntervalMs, ...this.opts.thresholds });
    inc.poller = poller;
    inc.unsubscribe = poller.onChange(() => this.onProbeHealth(inc));
    // During start() its own deadline applies; later starts (restarts) get a watchdog each.
    if (!this.startWaiter) inc.readyTimer = setTimeout(() => this.onReadyTimeout(inc), this.readyTimeoutMs);
    this.setPhase("starting", "starting");
    void poller.start();
  }

  private onProbeHealth(inc: Incarnation): void {
    if (inc !== this.current || inc.exited) return;
    const h = inc.poller!.current();
    if (this.phaseNow === "starting" && h.ready) {
      inc.readyAt = Date.now();
      clearTimeout(inc.readyTimer);
      this.log.info(
        { event: "engine_ready", pid: inc.child.pid, load_ms: inc.readyAt - inc.spawnedAt, restarts: this.restartCount },
        `engine ready after ${inc.readyAt - inc.spawnedAt} ms (pid ${inc.child.pid})`,
      );
      this.setPhase("running");
      const waiter = this.takeStartWaiter();
      waiter?.resolve();
      return;
    }
    if (this.phaseNow === "running" && h.ready !== this.healthNow.ready) {
      if (h.ready) this.log.info({ event: "engine_healthy", pid: inc.child.pid }, "engine answers its health probe again");
      else this.log.warn({ event: "engine_unhealthy", pid: inc.child.pid, last_error: h.lastError }, `engine not ready: ${h.lastError}`);
    }
    this.refresh();
  }

  private onReadyTimeout(inc: Incarnation): void {
    if (inc !== this.current || this.phaseNow !== "starting" || inc.exited) return;
    inc.killReason = `engine not Ready within ${this.readyTimeoutMs} ms${this.progressNote()}`;
    this.detachPoller(inc);
    this.log.warn({ event: "engine_ready_timeout", pid: inc.child.pid, ready_timeout_ms: this.readyTimeoutMs }, `${inc.killReason}; killing it`);
    void this.terminate(inc);
  }

  private onSpawnError(inc: Incarnation, err: NodeJS.ErrnoException): void {
    if (inc.exited) return;
    this.markExited(inc);
    if (inc !== this.current || !this.expectsLife()) return;
    const hint = err.code === "ENOENT" ? ` (is ${this.argv[0]} on PATH${this.opts.cwd ? ` and does cwd ${this.opts.cwd} exist` : ""}?)` : "";
    const cause = `cannot start the engine (${joinCommand(this.argv)}): ${err.message}${hint}`;
    if (err.code !== undefined && PERMANENT_SPAWN_ERRORS.has(err.code)) {
      this.giveUp(cause);
      return;
    }
    this.crashed(inc, cause, "");
  }

  private onExit(inc: Incarnation, code: number | null, signal: NodeJS.Signals | null): void {
    if (inc.exited) return;
    this.markExited(inc);
    // Whatever the engine left in its process group goes with it: a restart needs the port and the GPU.
    this.signalGroup(inc, "SIGKILL");
    if (inc !== this.current || !this.expectsLife()) return;
    const short = inc.killReason ?? (code !== null ? `engine exited with code ${code}` : `engine killed by signal ${signal}`);
    // Not Ready at once; the stderr tail follows as soon as the pipe has drained.
    this.lastCrash = short;
    this.setPhase("exited", short);
    void Promise.race([inc.stderrEnded, delay(STDERR_DRAIN_MS)]).then(() => {
      if (inc !== this.current || this.phaseNow !== "exited") return;
      this.crashed(inc, short, tailText(inc.stderr.lines()), code, signal);
    });
  }

  /** Counts a crash, then restarts after backoff or opens the breaker. */
  private crashed(inc: Incarnation, short: string, tail: string, code: number | null = null, signal: NodeJS.Signals | null = null): void {
    const now = Date.now();
    const cause = tail ? `${short}; last stderr lines:\n${tail}` : short;
    this.lastCrash = short;
    if (inc.readyAt !== undefined && now - inc.readyAt >= this.backoffResetMs) this.attempt = 0;
    this.crashTimes = this.crashTimes.filter((t) => t > now - this.breaker.windowMs);
    this.crashTimes.push(now);
    this.current = undefined;
    const fields = { pid: inc.child.pid, exit_code: code, signal, stderr_tail: inc.stderr.lines(), crashes_in_window: this.crashTimes.length };

    if (this.crashTimes.length >= this.breaker.maxCrashes) {
      const open = `circuit open after ${this.crashTimes.length} crashes in ${seconds(this.breaker.windowMs)} s; last: ${cause}`;
      this.setPhase("circuit-open", open);
      this.log.error({ event: "engine_circuit_open", ...fields, restarts: this.restartCount }, `${short}; circuit open after ${this.crashTimes.length} crashes in ${seconds(this.breaker.windowMs)} s, not restarting`);
      const waiter = this.takeStartWaiter();
      waiter?.reject(new Error(open));
      return;
    }

    const wait = backoffDelayMs(this.backoff, this.attempt++);
    const next = this.restartCount + 1;
    this.setPhase("backoff", `${cause}\nrestart ${next} in ${wait} ms`);
    this.log.warn({ event: "engine_exited", ...fields, restart_in_ms: wait }, `${short}; restarting in ${wait} ms`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.phaseNow !== "backoff") return;
      this.restartCount = next;
      this.spawnEngine();
    }, wait);
  }

  /** No point retrying (the command itself is wrong): fail start(), or stop restarting. */
  private giveUp(cause: string): void {
    if (this.startWaiter) {
      void this.failStart(cause);
      return;
    }
    this.current = undefined;
    this.clearRestartTimer();
    this.setPhase("failed", cause);
    this.log.error({ event: "engine_failed", restarts: this.restartCount }, `${cause}; not restarting`);
  }

  /** start() gives up: no process is left running, then its promise rejects. */
  private async failStart(cause: string): Promise<void> {
    const waiter = this.takeStartWaiter();
    if (!waiter) return;
    this.clearRestartTimer();
    const inc = this.current;
    this.setPhase("failed", cause);
    this.log.error({ event: "engine_start_failed", pid: inc?.child.pid, restarts: this.restartCount }, cause);
    if (inc && !inc.exited) {
      this.detachPoller(inc);
      inc.killReason = cause;
      await this.terminate(inc);
    }
    if (this.current === inc) this.current = undefined;
    waiter.reject(new Error(cause));
  }

  /** SIGTERM to the process group, SIGKILL after stopGraceMs; resolves once the process is gone (or after giving up on it). */
  private terminate(inc: Incarnation): Promise<void> {
    if (inc.exited) return Promise.resolve();
    inc.terminating ??= (async () => {
      this.signalGroup(inc, "SIGTERM");
      if (await settlesWithin(inc.gone, this.stopGraceMs)) return;
      this.log.warn({ event: "engine_kill", pid: inc.child.pid, grace_ms: this.stopGraceMs }, `engine did not exit within ${this.stopGraceMs} ms of SIGTERM; sending SIGKILL`);
      this.signalGroup(inc, "SIGKILL");
      if (await settlesWithin(inc.gone, KILL_WAIT_MS)) return;
      this.log.error({ event: "engine_unkillable", pid: inc.child.pid }, `engine (pid ${inc.child.pid}) still there ${KILL_WAIT_MS} ms after SIGKILL; giving up on it`);
    })();
    return inc.terminating;
  }

  private signalGroup(inc: Incarnation, signal: NodeJS.Signals): void {
    const pid = inc.child.pid;
    if (pid === undefined) return;
    if (process.platform !== "win32") {
      try {
        process.kill(-pid, signal);
        return;
      } catch {
        // No such group (already gone) or not ours: fall back to the process itself.
      }
    }
    if (!inc.exited) inc.child.kill(signal);
  }

  // ---- bookkeeping ----------------------------------------------------------

  private markExited(inc: Incarnation): void {
    inc.exited = true;
    clearTimeout(inc.readyTimer);
    this.detachPoller(inc);
    inc.markGone();
  }

  private detachPoller(inc: Incarnation): void {
    inc.poller?.stop();
    inc.unsubscribe?.();
    inc.unsubscribe = undefined;
  }

  /** True in the phases where the engine is meant to be alive (an exit is a crash). */
  private expectsLife(): boolean {
    return this.phaseNow === "starting" || this.phaseNow === "running";
  }

  private takeStartWaiter(): StartWaiter | undefined {
    const waiter = this.startWaiter;
    this.startWaiter = undefined;
    if (waiter) clearTimeout(waiter.timer);
    return waiter;
  }

  private clearRestartTimer(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
  }

  /** What the engine was doing when a deadline passed, e.g. " (last probe: loading: ...)". */
  private progressNote(): string {
    const probe = this.current?.poller?.current().lastError;
    if (probe) return ` (last probe: ${probe})`;
    return this.lastCrash ? ` (last: ${this.lastCrash})` : "";
  }

  private setPhase(phase: SupervisorPhase, status?: string): void {
    this.phaseNow = phase;
    if (status !== undefined) this.status = status;
    this.refresh();
  }

  /** Recomputes health from the phase and the running process's poller; tells listeners when it changed. */
  private refresh(): void {
    const next = this.compose();
    const h = this.healthNow;
    if (next.live === h.live && next.ready === h.ready && next.lastError === h.lastError) return;
    this.healthNow = next;
    this.listeners.emit({ ...next });
  }

  private compose(): WorkerHealth {
    const poller = this.current?.poller?.current();
    if (this.phaseNow === "running" && poller) return { ...poller };
    if (this.phaseNow === "starting") {
      const detail = poller?.lastError || "starting";
      const prefix = this.restartCount > 0 && this.lastCrash ? `starting (restart ${this.restartCount} after: ${this.lastCrash})` : "starting";
      return { live: poller?.live ?? false, ready: false, lastError: `${prefix}: ${detail}` };
    }
    return { live: false, ready: false, lastError: this.status };
  }
}

function tailText(lines: string[]): string {
  const text = lines.join("\n");
  return text.length > LAST_ERROR_TAIL_CHARS ? "…" + text.slice(-LAST_ERROR_TAIL_CHARS) : text;
}

function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function settlesWithin(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`${name} must be a number > 0, got ${value}`);
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!(Number.isFinite(value) && value >= 0)) throw new RangeError(`${name} must be a number >= 0, got ${value}`);
  return value;
}
