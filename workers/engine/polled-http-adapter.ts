// The base every HTTP engine adapter (llama.cpp, vLLM, TGI, Triton,
// OpenAI-compatible) stands on: its two HTTP clients, health from a
// HealthPoller around the adapter's probe, a start() that waits for Ready,
// and stop(). What differs per engine is a hook the adapter supplies: the
// probe (which also reads whatever info() needs before it may say Ready),
// what a failed probe or a lost Ready makes stale, and, in the setup,
// whether a stopped adapter may start again.
import type { WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import { ChangeListeners } from "../change-listeners.js";
import type { EngineInfo } from "../engine-adapter.js";
import type { EngineClients } from "../http/engine-clients.js";
import type { EngineHttp } from "../http/engine-http.js";
import { HealthPoller, type HealthPollerOptions, type ProbeResult } from "./health-poller.js";

export interface PolledAdapterSetup {
  clients: EngineClients;
  /** The poller's interval and thresholds; HealthPoller's defaults where unset. */
  poll: Omit<HealthPollerOptions, "probe">;
  /** What health() reports before start(); default the poller's own "not probed yet". */
  beforeStart?: WorkerHealth;
  /**
   * When set, start() after stop() rejects with this error: a stopped
   * adapter is done. When unset, stop() only pauses the polls and a later
   * start() resumes them.
   */
  restartRefusal?: () => Error;
}

const STOPPED: WorkerHealth = { live: false, ready: false, lastError: "stopped" };

/**
 * Health, start and stop of an adapter that knows its engine only by
 * polling it. The poller keeps its last verdict after stop, which would
 * still claim a Ready engine, so the adapter's own state decides what
 * health() says: the setup's `beforeStart`, the poller's verdict while
 * running, "stopped" after stop(). Listeners hear the poller only while
 * running, and "stopped" once.
 */
export abstract class PolledHttpAdapter {
  protected readonly http: EngineHttp;
  protected readonly probes: EngineHttp;
  protected readonly secrets: string[];
  /** Set in the adapter's constructor; replaced, never mutated, so a caller's copy stays consistent. */
  protected currentInfo!: EngineInfo;
  private readonly poller: HealthPoller;
  private readonly listeners = new ChangeListeners<WorkerHealth>();
  /** Wakes the start() calls waiting for Ready, when Ready or stop() comes. */
  private readonly waiters = new Set<() => void>();
  private state: "new" | "running" | "stopped" = "new";

  constructor(private readonly setup: PolledAdapterSetup) {
    ({ http: this.http, probes: this.probes, secrets: this.secrets } = setup.clients);
    this.poller = new HealthPoller({ ...setup.poll, probe: (signal) => this.pollOnce(signal) });
    this.poller.onChange((health) => this.verdict(health));
  }

  /** One look at the engine. Ready only once what info() and slotsTotal() need has been read from it. */
  protected abstract probe(signal: AbortSignal): Promise<ProbeResult>;

  /** After a probe that failed or threw: the engine may be restarting, so what was read from it may no longer hold. */
  protected probeFailed(): void {}

  /** On every verdict that is not Ready (the poller's thresholds applied): figures read from the engine are stale. */
  protected engineUnready(): void {}

  abstract slotsTotal(): number;

  info(): EngineInfo {
    return this.currentInfo;
  }

  health(): WorkerHealth {
    if (this.state === "stopped") return STOPPED;
    return this.state === "new" && this.setup.beforeStart ? this.setup.beforeStart : this.poller.current();
  }

  onHealthChange(listener: (health: WorkerHealth) => void): () => void {
    return this.listeners.add(listener);
  }

  /** Polls from now on; resolves once the engine is Ready, or when stop() comes first. */
  async start(): Promise<void> {
    if (this.state === "stopped" && this.setup.restartRefusal) throw this.setup.restartRefusal();
    const polling = this.state === "running";
    this.state = "running";
    let wake!: () => void;
    const readyOrStopped = new Promise<void>((resolve) => this.waiters.add((wake = resolve)));
    try {
      if (!polling) await this.poller.start();
      if (this.state === "running" && !this.poller.current().ready) await readyOrStopped;
    } finally {
      this.waiters.delete(wake);
    }
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- nothing to wait for, but a throwing listener must still reject stop()
  async stop(): Promise<void> {
    if (this.state !== "stopped") {
      this.state = "stopped";
      this.poller.stop();
      this.wakeStarters();
      this.listeners.emit(STOPPED);
    }
    // Destroys in-flight sockets too: running generations fail with RESET, which the sidecar expects on stop.
    this.http.close();
    this.probes.close();
  }

  /** Probes now rather than at the next tick (a probe already running counts), e.g. after a failure that suggests the engine went away. */
  protected probeNow(): void {
    if (this.state === "running") void this.poller.probeNow();
  }

  private async pollOnce(signal: AbortSignal): Promise<ProbeResult> {
    let result: ProbeResult;
    try {
      result = await this.probe(signal);
    } catch (err) {
      this.probeFailed();
      throw err;
    }
    if (result.outcome !== "ready" && result.outcome !== "busy") this.probeFailed();
    return result;
  }

  private verdict(health: WorkerHealth): void {
    if (!health.ready) this.engineUnready();
    if (this.state !== "running") return;
    if (health.ready) this.wakeStarters();
    this.listeners.emit(health);
  }

  private wakeStarters(): void {
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }
}
