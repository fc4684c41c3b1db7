import type { WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import { ChangeListeners } from "../change-listeners.js";

/** What one probe of an engine found. `busy` (HTTP 429/408) means alive and working, not unhealthy. */
export type ProbeResult =
  { outcome: "ready" } | { outcome: "busy" } | { outcome: "loading"; detail: string } | { outcome: "down"; detail: string };

export interface HealthPollerOptions {
  probe: (signal: AbortSignal) => Promise<ProbeResult>;
  intervalMs?: number;
  /** Consecutive failed probes before a Ready engine is reported not Ready (no flapping on one slow probe). */
  failureThreshold?: number;
  /** Consecutive good probes before a not-Ready engine is reported Ready. */
  successThreshold?: number;
  /** A probe slower than this counts as failed. */
  probeTimeoutMs?: number;
}

/**
 * Polls an engine's health and turns probe results into WorkerHealth with
 * thresholds, so one slow or failed probe does not flap the replica out of
 * placement. One timer per engine, never per request.
 */
export class HealthPoller {
  private health: WorkerHealth = { live: false, ready: false, lastError: "not probed yet" };
  private readonly listeners = new ChangeListeners<WorkerHealth>();
  private failures = 0;
  private successes = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private readonly opts: Required<HealthPollerOptions>;

  constructor(opts: HealthPollerOptions) {
    // `??` per field: an option passed as undefined means "the default", not "none".
    this.opts = {
      probe: opts.probe,
      intervalMs: opts.intervalMs ?? 2_000,
      failureThreshold: opts.failureThreshold ?? 3,
      successThreshold: opts.successThreshold ?? 1,
      probeTimeoutMs: opts.probeTimeoutMs ?? 5_000,
    };
  }

  current(): WorkerHealth {
    return this.health;
  }

  onChange(listener: (h: WorkerHealth) => void): () => void {
    return this.listeners.add(listener);
  }

  /** Probes at once and then every interval; resolves after the first probe. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Probe now (e.g. after a request failed), outside the schedule; a probe already running counts. */
  async probeNow(): Promise<void> {
    if (this.probing) return;
    if (this.timer) clearTimeout(this.timer);
    await this.tick();
  }

  private probing = false;

  private async tick(): Promise<void> {
    this.probing = true;
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(), this.opts.probeTimeoutMs);
    let result: ProbeResult;
    try {
      result = await this.opts.probe(controller.signal);
    } catch (err) {
      result = { outcome: "down", detail: (err as Error).message };
    } finally {
      clearTimeout(timeout);
      this.probing = false;
    }
    this.apply(result);
    if (!this.stopped) {
      // Exactly one scheduled probe at a time, however this tick was started.
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.tick(), this.opts.intervalMs);
      this.timer.unref();
    }
  }

  private apply(r: ProbeResult): void {
    const good = r.outcome === "ready" || r.outcome === "busy";
    if (good) {
      this.failures = 0;
      this.successes++;
      if (!this.health.ready && this.successes >= this.opts.successThreshold) this.set({ live: true, ready: true, lastError: "" });
      return;
    }
    this.successes = 0;
    this.failures++;
    const detail = r.detail;
    if (r.outcome === "loading") {
      // Loading is a fact the engine told us, not a flaky probe: report it at once.
      this.set({ live: true, ready: false, lastError: `loading: ${detail}` });
      return;
    }
    if (!this.health.ready || this.failures >= this.opts.failureThreshold) this.set({ live: false, ready: false, lastError: detail });
  }

  private set(h: WorkerHealth): void {
    if (h.live === this.health.live && h.ready === this.health.ready && h.lastError === this.health.lastError) return;
    this.health = h;
    this.listeners.emit(h);
  }
}
