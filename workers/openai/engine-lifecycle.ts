// What every HTTP engine adapter in workers/openai/ and workers/vllm/ shares
// around the protocol: the common options, its two HTTP clients, and health
// from a polled probe with a start() that waits for Ready.
import type { WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import type { EngineInfo } from "../engine-adapter.js";
import { ChangeListeners } from "../change-listeners.js";
import { HealthPoller, type ProbeResult } from "../engine/health-poller.js";
import { failureOf } from "../http/engine-errors.js";
import { EngineHttp, type EngineHttpOptions } from "../http/engine-http.js";
import type { HttpEngineOptions } from "../http/engine-options.js";

export type { HttpEngineOptions };

/** Timeouts and retries of the generation client, for deployments (and tests) that need other bounds. */
export type HttpTuning = Pick<EngineHttpOptions, "connectTimeoutMs" | "headersTimeoutMs" | "idleTimeoutMs" | "retry">;

/** A probe's own bound; below HealthPoller's 5 s probe timeout, so a slow engine reads as a timeout, not an abort. */
const PROBE_TIMEOUT_MS = 3_000;

export interface EngineClients {
  /** Generations: the adapter's timeouts, connect retries. */
  http: EngineHttp;
  /** Health and metadata polls: one try each, since the poller's thresholds already absorb a failed probe. */
  probes: EngineHttp;
}

export function engineClients(opts: HttpEngineOptions, tuning: HttpTuning = {}): EngineClients {
  const headers: Record<string, string> = opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {};
  const secrets = opts.apiKey ? [opts.apiKey] : [];
  return {
    http: new EngineHttp({ baseUrl: opts.baseUrl, headers, secrets, ...tuning }),
    probes: new EngineHttp({
      baseUrl: opts.baseUrl,
      headers,
      secrets,
      connectTimeoutMs: Math.min(tuning.connectTimeoutMs ?? PROBE_TIMEOUT_MS, PROBE_TIMEOUT_MS),
      headersTimeoutMs: PROBE_TIMEOUT_MS,
      idleTimeoutMs: PROBE_TIMEOUT_MS,
      retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
    }),
  };
}

/**
 * GET for a probe: the body of a 2xx answer, or the ProbeResult that ends
 * the probe (429/408 busy; any other status or a transport failure down,
 * with the HTTP layer's redacted message).
 */
export async function probeGet(http: EngineHttp, path: string, signal: AbortSignal): Promise<{ text: string } | ProbeResult> {
  let status: number;
  let text: string;
  try {
    ({ status, text } = await http.get(path, { signal, timeoutMs: PROBE_TIMEOUT_MS }));
  } catch (err) {
    return { outcome: "down", detail: http.redact(err instanceof Error ? err.message : String(err)) };
  }
  if (status === 429 || status === 408) return { outcome: "busy" };
  // Engines echo keys back in their errors (a rejected one, above all): redact before the text becomes lastError.
  if (status < 200 || status > 299) return { outcome: "down", detail: http.redact(failureOf({ path, status, body: text }).message) };
  return { text };
}

const NOT_STARTED: WorkerHealth = { live: false, ready: false, lastError: "not started" };
const STOPPED: WorkerHealth = { live: false, ready: false, lastError: "stopped" };

/**
 * Health from a HealthPoller, plus the adapter's own lifecycle: the poller
 * keeps its last verdict after stop, which would still claim a Ready engine.
 */
export class PolledHealth {
  private readonly poller: HealthPoller;
  private readonly listeners = new ChangeListeners<WorkerHealth>();
  private state: "new" | "running" | "stopped" = "new";
  /** Wakes a start() that is waiting for Ready when stop() comes first. */
  private wakeStart: (() => void) | undefined;

  constructor(probe: (signal: AbortSignal) => Promise<ProbeResult>, intervalMs = 2_000) {
    this.poller = new HealthPoller({ probe, intervalMs });
    this.poller.onChange((h) => {
      if (this.state === "running") this.listeners.emit(h);
    });
  }

  current(): WorkerHealth {
    return this.state === "running" ? this.poller.current() : this.state === "new" ? NOT_STARTED : STOPPED;
  }

  onChange(listener: (h: WorkerHealth) => void): () => void {
    return this.listeners.add(listener);
  }

  /** Polls from now on; resolves once the engine is Ready, or when stop() comes first. */
  async start(): Promise<void> {
    if (this.state !== "new") throw new Error(this.state === "running" ? "already started" : "stopped adapters do not restart");
    this.state = "running";
    let off = (): void => {};
    const readyOrStopped = new Promise<void>((resolve) => {
      this.wakeStart = resolve;
      off = this.listeners.add((h) => {
        if (h.ready) resolve();
      });
    });
    try {
      await this.poller.start();
      if (this.state === "running" && !this.poller.current().ready) await readyOrStopped;
    } finally {
      off();
      this.wakeStart = undefined;
    }
  }

  stop(): void {
    if (this.state === "stopped") return;
    this.state = "stopped";
    this.poller.stop();
    this.wakeStart?.();
    this.listeners.emit(STOPPED);
  }
}

/**
 * What the OpenAI-protocol adapters (openai, vllm) share: their two HTTP
 * clients, polled health, a fixed slot count, and start/stop. A subclass
 * sets `currentInfo` in its constructor and says how to probe its engine.
 */
export abstract class PolledHttpAdapter {
  protected readonly http: EngineHttp;
  protected readonly probes: EngineHttp;
  protected currentInfo!: EngineInfo;
  private readonly healthState: PolledHealth;
  private readonly slots: number;

  constructor(opts: HttpEngineOptions, tuning: HttpTuning | undefined, defaultSlots: number) {
    ({ http: this.http, probes: this.probes } = engineClients(opts, tuning));
    this.slots = positiveSlots(opts.slots, defaultSlots);
    this.healthState = new PolledHealth((signal) => this.probe(signal), opts.pollIntervalMs);
  }

  protected abstract probe(signal: AbortSignal): Promise<ProbeResult>;

  info(): EngineInfo {
    return this.currentInfo;
  }

  health(): WorkerHealth {
    return this.healthState.current();
  }

  onHealthChange(listener: (health: WorkerHealth) => void): () => void {
    return this.healthState.onChange(listener);
  }

  slotsTotal(): number {
    return this.slots;
  }

  start(): Promise<void> {
    return this.healthState.start();
  }

  async stop(): Promise<void> {
    this.healthState.stop();
    this.http.close();
    this.probes.close();
  }
}

/** A configured slot count when it is a positive integer, else the engine's default. */
export function positiveSlots(slots: number | undefined, fallback: number): number {
  return slots !== undefined && Number.isInteger(slots) && slots > 0 ? slots : fallback;
}
