// What an EngineSupervisor is told, and the settings it runs with once the
// defaults are filled in and nonsense is refused.
import type { Logger } from "../../contracts/runtime/logger.js";
import type { ProbeResult } from "../engine/health-poller.js";
import { DEFAULT_BACKOFF, validateBackoff, type BackoffPolicy } from "./backoff.js";
import type { BreakerPolicy } from "./restart-policy.js";

export interface SupervisorOptions {
  /**
   * The engine's command line, e.g. "llama-server -m model.gguf --port 8081".
   * Split into words (quotes supported, see splitCommand) and spawned WITHOUT
   * a shell, in its own process group.
   */
  command: string;
  /** Changes to this process's environment for the engine: a value sets a variable, undefined removes it. */
  env?: Record<string, string | undefined>;
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
  breaker?: BreakerPolicy;
  /** stop(): SIGTERM, then SIGKILL after this long. Default 10 s. */
  stopGraceMs?: number;
  logger: Logger;
  /** Health polling interval. Default 2000 ms. */
  pollIntervalMs?: number;
  /** HealthPoller thresholds. Defaults: 3 failures to go unready, 1 success to go ready, probes time out after 5 s. */
  thresholds?: { failureThreshold?: number; successThreshold?: number; probeTimeoutMs?: number };
  /** Lines of the engine's stderr kept for crash reports. Default 20. */
  stderrTailLines?: number;
  /**
   * A crash before the first Ready fails start() at once instead of
   * restarting: for an engine started on a model it is switching to, where a
   * model that does not load means rolling back, not retrying. Default false.
   */
  crashFailsStart?: boolean;
}

/** The timings and limits a supervisor runs with: SupervisorOptions with every default applied. */
export interface SupervisorSettings {
  readyTimeoutMs: number;
  backoff: Required<BackoffPolicy>;
  backoffResetMs: number;
  breaker: BreakerPolicy;
  stopGraceMs: number;
  pollIntervalMs: number;
}

/** Fills in the defaults; throws RangeError for a setting that cannot work (zero timeouts, a shrinking backoff, ...). */
export function supervisorSettings(opts: SupervisorOptions): SupervisorSettings {
  const readyTimeoutMs = positive("readyTimeoutMs", opts.readyTimeoutMs ?? 600_000);
  const backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
  validateBackoff(backoff);
  const backoffResetMs = nonNegative("backoffResetMs", opts.backoffResetMs ?? 60_000);
  const breaker = opts.breaker ?? { maxCrashes: 5, windowMs: 300_000 };
  positive("breaker.maxCrashes", breaker.maxCrashes);
  positive("breaker.windowMs", breaker.windowMs);
  const stopGraceMs = nonNegative("stopGraceMs", opts.stopGraceMs ?? 10_000);
  const pollIntervalMs = positive("pollIntervalMs", opts.pollIntervalMs ?? 2_000);
  return { readyTimeoutMs, backoff, backoffResetMs, breaker, stopGraceMs, pollIntervalMs };
}

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`${name} must be a number > 0, got ${value}`);
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!(Number.isFinite(value) && value >= 0)) throw new RangeError(`${name} must be a number >= 0, got ${value}`);
  return value;
}
