// The pool-manager part of a sidecar: it owns the engine process. It starts
// the engine, reports Ready only once the engine's own health probe says the
// model is loaded (preload), notices when the process dies, restarts it with
// capped exponential backoff, and stops restarting when the engine keeps
// crashing (circuit breaker), so a broken model or GPU does not turn into a
// restart loop that hides the cause. The process itself is engine-process.ts,
// the restart decision restart-policy.ts; this file keeps the phase and the
// health that follows from it.
import type { Logger } from "../../contracts/runtime/logger.js";
import type { WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import { ChangeListeners } from "../change-listeners.js";
import { HealthPoller } from "../engine/health-poller.js";
import { EngineProcess } from "./engine-process.js";
import { RestartPolicy } from "./restart-policy.js";
import { joinCommand, splitCommand } from "./shell-words.js";
import { supervisorSettings, type SupervisorOptions, type SupervisorSettings } from "./supervisor-options.js";

export type { SupervisorOptions } from "./supervisor-options.js";

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

interface StartWaiter {
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** After an exit, how long to wait for the rest of the engine's stderr before reporting the crash. */
const STDERR_DRAIN_MS = 250;
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
  private readonly settings: SupervisorSettings;
  private readonly restartPolicy: RestartPolicy;
  private readonly listeners = new ChangeListeners<WorkerHealth>();

  private phaseNow: SupervisorPhase = "idle";
  /** lastError for phases without a running process. */
  private status = "not started";
  private healthNow: WorkerHealth = { live: false, ready: false, lastError: "not started" };
  private current: EngineProcess | undefined;
  private restartCount = 0;
  /** The last crash's short cause (no stderr), shown while the restarted engine preloads. */
  private lastCrash = "";
  private restartTimer: NodeJS.Timeout | undefined;
  private startWaiter: StartWaiter | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly opts: SupervisorOptions) {
    this.argv = splitCommand(opts.command);
    this.log = opts.logger;
    this.settings = supervisorSettings(opts);
    const { backoff, breaker, backoffResetMs } = this.settings;
    this.restartPolicy = new RestartPolicy(backoff, breaker, backoffResetMs);
  }

  /** Automatic restarts after crashes so far (not counting start() calls). */
  get restarts(): number {
    return this.restartCount;
  }

  /** The engine's process id while one runs. */
  get pid(): number | undefined {
    const inc = this.current;
    return inc && !inc.exited ? inc.pid : undefined;
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
      return Promise.reject(new Error(`the previous engine process (pid ${this.current.pid}) is still being stopped`));
    }
    this.stopping = undefined;
    this.restartPolicy.reset();
    this.lastCrash = "";
    const { readyTimeoutMs } = this.settings;
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => void this.failStart(`engine not Ready within ${readyTimeoutMs} ms${this.progressNote()}`),
        readyTimeoutMs,
      );
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
      inc.detachPoller();
      this.log.info(
        { event: "engine_stopping", pid: inc.pid, grace_ms: this.settings.stopGraceMs },
        `stopping the engine (pid ${inc.pid})`,
      );
      await inc.terminate(this.settings.stopGraceMs, this.log);
    }
    this.current = undefined;
    this.setPhase("stopped", "stopped");
    if (inc) this.log.info({ event: "engine_stopped", pid: inc.pid, restarts: this.restartCount }, "engine stopped");
    waiter?.reject(new Error("the engine supervisor was stopped before the engine was Ready"));
  }

  // ---- process life cycle -------------------------------------------------

  private spawnEngine(): void {
    let inc: EngineProcess;
    try {
      inc = EngineProcess.spawn({
        argv: this.argv,
        cwd: this.opts.cwd,
        env: this.opts.env,
        stderrTailLines: this.opts.stderrTailLines ?? 20,
        log: this.log,
        onExit: (proc, code, signal) => this.onExit(proc, code, signal),
        onSpawnError: (proc, err) => this.onSpawnError(proc, err),
      });
    } catch (err) {
      this.giveUp(`cannot start the engine (${joinCommand(this.argv)}): ${(err as Error).message}`);
      return;
    }
    this.current = inc;
    if (inc.pid === undefined) {
      // The spawn failed; the "error" event follows and reports it.
      this.setPhase("starting", "starting");
      return;
    }

    this.log.info(
      { event: "engine_spawned", pid: inc.pid, command: joinCommand(this.argv), restarts: this.restartCount },
      this.restartCount === 0
        ? `engine started (pid ${inc.pid}), waiting for it to load`
        : `engine restarted (pid ${inc.pid}, restart ${this.restartCount}), waiting for it to load`,
    );
    const poller = new HealthPoller({ probe: this.opts.probe, intervalMs: this.settings.pollIntervalMs, ...this.opts.thresholds });
    inc.watch(poller, () => this.onProbeHealth(inc));
    // During start() its own deadline applies; later starts (restarts) get a watchdog each.
    if (!this.startWaiter) inc.readyTimer = setTimeout(() => this.onReadyTimeout(inc), this.settings.readyTimeoutMs);
    this.setPhase("starting", "starting");
    void poller.start();
  }

  private onProbeHealth(inc: EngineProcess): void {
    if (inc !== this.current || inc.exited) return;
    const h = inc.poller!.current();
    if (this.phaseNow === "starting" && h.ready) {
      inc.readyAt = Date.now();
      clearTimeout(inc.readyTimer);
      this.log.info(
        { event: "engine_ready", pid: inc.pid, load_ms: inc.readyAt - inc.spawnedAt, restarts: this.restartCount },
        `engine ready after ${inc.readyAt - inc.spawnedAt} ms (pid ${inc.pid})`,
      );
      this.setPhase("running");
      const waiter = this.takeStartWaiter();
      waiter?.resolve();
      return;
    }
    if (this.phaseNow === "running" && h.ready !== this.healthNow.ready) {
      if (h.ready) this.log.info({ event: "engine_healthy", pid: inc.pid }, "engine answers its health probe again");
      else this.log.warn({ event: "engine_unhealthy", pid: inc.pid, last_error: h.lastError }, `engine not ready: ${h.lastError}`);
    }
    this.refresh();
  }

  private onReadyTimeout(inc: EngineProcess): void {
    if (inc !== this.current || this.phaseNow !== "starting" || inc.exited) return;
    const { readyTimeoutMs } = this.settings;
    inc.killReason = `engine not Ready within ${readyTimeoutMs} ms${this.progressNote()}`;
    inc.detachPoller();
    this.log.warn({ event: "engine_ready_timeout", pid: inc.pid, ready_timeout_ms: readyTimeoutMs }, `${inc.killReason}; killing it`);
    void inc.terminate(this.settings.stopGraceMs, this.log);
  }

  private onSpawnError(inc: EngineProcess, err: NodeJS.ErrnoException): void {
    if (inc.exited) return;
    inc.markExited();
    if (inc !== this.current || !this.expectsLife()) return;
    const hint =
      err.code === "ENOENT" ? ` (is ${this.argv[0]} on PATH${this.opts.cwd ? ` and does cwd ${this.opts.cwd} exist` : ""}?)` : "";
    const cause = `cannot start the engine (${joinCommand(this.argv)}): ${err.message}${hint}`;
    if (err.code !== undefined && PERMANENT_SPAWN_ERRORS.has(err.code)) {
      this.giveUp(cause);
      return;
    }
    this.crashed(inc, cause, "");
  }

  private onExit(inc: EngineProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (inc.exited) return;
    inc.markExited();
    // Whatever the engine left in its process group goes with it: a restart needs the port and the GPU.
    inc.signalGroup("SIGKILL");
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
  private crashed(inc: EngineProcess, short: string, tail: string, code: number | null = null, signal: NodeJS.Signals | null = null): void {
    const cause = tail ? `${short}; last stderr lines:\n${tail}` : short;
    if (this.startWaiter && this.opts.crashFailsStart) {
      this.current = undefined;
      void this.failStart(cause);
      return;
    }
    this.lastCrash = short;
    const verdict = this.restartPolicy.crashed(Date.now(), inc.readyAt);
    this.current = undefined;
    const fields = { pid: inc.pid, exit_code: code, signal, stderr_tail: inc.stderr.lines(), crashes_in_window: verdict.crashesInWindow };

    if (verdict.action === "circuit-open") {
      const crashes = `${verdict.crashesInWindow} crashes in ${seconds(this.settings.breaker.windowMs)} s`;
      const open = `circuit open after ${crashes}; last: ${cause}`;
      this.setPhase("circuit-open", open);
      this.log.error(
        { event: "engine_circuit_open", ...fields, restarts: this.restartCount },
        `${short}; circuit open after ${crashes}, not restarting`,
      );
      const waiter = this.takeStartWaiter();
      waiter?.reject(new Error(open));
      return;
    }

    const wait = verdict.delayMs;
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
    this.log.error({ event: "engine_start_failed", pid: inc?.pid, restarts: this.restartCount }, cause);
    if (inc && !inc.exited) {
      inc.detachPoller();
      inc.killReason = cause;
      await inc.terminate(this.settings.stopGraceMs, this.log);
    }
    if (this.current === inc) this.current = undefined;
    waiter.reject(new Error(cause));
  }

  // ---- bookkeeping ----------------------------------------------------------

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
      const prefix =
        this.restartCount > 0 && this.lastCrash ? `starting (restart ${this.restartCount} after: ${this.lastCrash})` : "starting";
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
