// The two HTTP clients every engine adapter holds: one for generations, one
// for health and metadata polls, both presenting the engine's API key.
import { EngineHttp, type EngineHttpOptions } from "./engine-http.js";
import type { HttpEngineOptions } from "./engine-options.js";

/** Timeouts and retries of a client, for deployments (and tests) that need other bounds. */
export type HttpTuning = Pick<EngineHttpOptions, "connectTimeoutMs" | "headersTimeoutMs" | "idleTimeoutMs" | "retry">;

export interface EngineClients {
  /** Generations (and metadata read on demand): the adapter's timeouts and retries. */
  http: EngineHttp;
  /** Health and metadata polls: one try each, since the poller's thresholds already absorb a failed probe. */
  probes: EngineHttp;
  /** The API key, for failures an adapter builds itself (failureOf's `secrets`); empty without one. */
  secrets: string[];
}

const NO_RETRY = { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 };
/** EngineHttp's own connect timeout, when the tuning does not set one. */
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/**
 * Both clients for the engine at `opts.baseUrl`, its API key sent as a bearer
 * token and redacted from every error. `probeTuning` bounds the probe client;
 * its retries are always off.
 */
export function engineClients(opts: HttpEngineOptions, tuning: HttpTuning = {}, probeTuning: HttpTuning = {}): EngineClients {
  const headers: Record<string, string> = opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {};
  const secrets = opts.apiKey ? [opts.apiKey] : [];
  const base = { baseUrl: opts.baseUrl, headers, secrets };
  return {
    http: new EngineHttp({ ...base, ...tuning }),
    probes: new EngineHttp({ ...base, ...probeTuning, retry: NO_RETRY }),
    secrets,
  };
}

/** Probe-client bounds: every phase within `probeTimeoutMs`, connecting no slower than the generation client may. */
export function probeBounds(tuning: HttpTuning, probeTimeoutMs: number): HttpTuning {
  return {
    connectTimeoutMs: Math.min(tuning.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, probeTimeoutMs),
    headersTimeoutMs: probeTimeoutMs,
    idleTimeoutMs: probeTimeoutMs,
  };
}
