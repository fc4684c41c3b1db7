// One spawned engine process and what belongs to it: its output tails, the
// health poller probing it, its deadlines, and the way it is ended (its whole
// process group: SIGTERM, then SIGKILL).
import { withEngineEnvironment } from "../hardware/device-mask.js";
import { spawn, type ChildProcess } from "node:child_process";
import type { Logger } from "../../contracts/runtime/logger.js";
import type { HealthPoller } from "../engine/health-poller.js";
import { OutputTail } from "./output-tail.js";

export interface SpawnOptions {
  /** The command's words; argv[0] is run without a shell. */
  argv: string[];
  cwd?: string;
  /** Changes to this process's environment: a value sets, undefined removes. */
  env?: Record<string, string | undefined>;
  stderrTailLines: number;
  log: Logger;
  onExit(proc: EngineProcess, code: number | null, signal: NodeJS.Signals | null): void;
  /** The process could not be started at all (no pid); reported instead of an exit. */
  onSpawnError(proc: EngineProcess, err: NodeJS.ErrnoException): void;
}

/** After SIGKILL, how long terminate() waits for the process to vanish before giving up on it. */
const KILL_WAIT_MS = 5_000;

export class EngineProcess {
  readonly spawnedAt = Date.now();
  /** The last lines of its stderr, for crash reports. */
  readonly stderr: OutputTail;
  /** Resolves once stderr has ended (all its output read). */
  readonly stderrEnded: Promise<void>;
  /** True once the process is gone (exit, or a failed spawn). */
  exited = false;
  /** When it first passed its probe. */
  readyAt?: number;
  /** Kills it when it takes too long to become Ready (restarts only: start() has its own deadline). */
  readyTimer?: NodeJS.Timeout;
  /** Why we killed it ourselves, when we did (reported instead of "killed by SIGTERM"). */
  killReason?: string;
  private pollerNow?: HealthPoller;
  private unsubscribe?: () => void;
  private readonly gone: Promise<void>;
  private markGone!: () => void;
  private terminating?: Promise<void>;

  /**
   * Spawns the engine in its own process group, so that ending it reaches
   * wrapper scripts' children too and a Ctrl-C meant for the sidecar does not
   * hit the engine behind its back. Throws when spawn() itself throws.
   */
  static spawn(opts: SpawnOptions): EngineProcess {
    const [file, ...args] = opts.argv as [string, ...string[]];
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: withEngineEnvironment(process.env, opts.env ?? {}),
      stdio: ["ignore", "pipe", "pipe"],
      detached: process.platform !== "win32",
    });
    return new EngineProcess(child, opts);
  }

  private constructor(
    readonly child: ChildProcess,
    opts: SpawnOptions,
  ) {
    this.gone = new Promise<void>((resolve) => (this.markGone = resolve));
    const debug = opts.log.isLevelEnabled("debug");
    const relay = (stream: string) => (line: string) => opts.log.debug({ event: "engine_output", stream, pid: child.pid }, line);
    const stderr = new OutputTail(opts.stderrTailLines, 500, debug ? relay("stderr") : undefined);
    this.stderr = stderr;
    this.stderrEnded = new Promise<void>((resolve) => {
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
    child.once("exit", (code, signal) => opts.onExit(this, code, signal));
    child.on("error", (err: NodeJS.ErrnoException) => {
      if (child.pid === undefined) opts.onSpawnError(this, err);
      else opts.log.warn({ event: "engine_process_error", pid: child.pid, err: err.message }, `engine process error: ${err.message}`);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The poller probing this process, while one does. */
  get poller(): HealthPoller | undefined {
    return this.pollerNow;
  }

  /** The poller that probes this process (the caller starts it); `onChange` hears its verdicts until it exits or detachPoller(). */
  watch(poller: HealthPoller, onChange: () => void): void {
    this.pollerNow = poller;
    this.unsubscribe = poller.onChange(onChange);
  }

  detachPoller(): void {
    this.pollerNow?.stop();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** The process is gone: its deadlines and its poller go with it. */
  markExited(): void {
    this.exited = true;
    clearTimeout(this.readyTimer);
    this.detachPoller();
    this.markGone();
  }

  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves once the process is gone (or after giving up on it). */
  terminate(graceMs: number, log: Logger): Promise<void> {
    if (this.exited) return Promise.resolve();
    this.terminating ??= (async () => {
      this.signalGroup("SIGTERM");
      if (await settlesWithin(this.gone, graceMs)) return;
      log.warn(
        { event: "engine_kill", pid: this.pid, grace_ms: graceMs },
        `engine did not exit within ${graceMs} ms of SIGTERM; sending SIGKILL`,
      );
      this.signalGroup("SIGKILL");
      if (await settlesWithin(this.gone, KILL_WAIT_MS)) return;
      log.error(
        { event: "engine_unkillable", pid: this.pid },
        `engine (pid ${this.pid}) still there ${KILL_WAIT_MS} ms after SIGKILL; giving up on it`,
      );
    })();
    return this.terminating;
  }

  signalGroup(signal: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid === undefined) return;
    if (process.platform !== "win32") {
      try {
        process.kill(-pid, signal);
        return;
      } catch {
        // No such group (already gone) or not ours: fall back to the process itself.
      }
    }
    if (!this.exited) this.child.kill(signal);
  }
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
