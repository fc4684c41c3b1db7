import { exposition, processMetrics } from "../contracts/runtime/process-metrics.js";
import type { EdgeMetrics } from "./metrics.js";

/** How long one answer from core serves /metrics: scrapers and dashboards that ask more often share it. */
export const CORE_METRICS_CACHE_MS = 1_000;
/** A scrape waits no longer than this for core; it then gets the edge's series and core_metrics_up 0. */
export const CORE_METRICS_TIMEOUT_MS = 1_000;

/**
 * The edge's GET /metrics: its own series, its process figures, then core's
 * (asked of core over the gRPC channel the edge already holds), so the one
 * public address shows the contract metrics. Concurrent scrapes share one
 * call to core, and its answer (or its failure) serves for a second.
 */
export class MetricsPage {
  private cached: { at: number; text: string } | undefined;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly metrics: EdgeMetrics,
    /** Core's exposition text; rejects when core does not answer within the timeout. */
    private readonly fetchCore: (timeoutMs: number) => Promise<string>,
    private readonly now: () => number = Date.now,
  ) {}

  async text(): Promise<string> {
    const core = await this.coreText();
    const own = await exposition([this.metrics.registry, processMetrics()]);
    return core ? `${own}\n${core}` : own;
  }

  private coreText(): Promise<string> {
    if (this.cached && this.now() - this.cached.at < CORE_METRICS_CACHE_MS) return Promise.resolve(this.cached.text);
    this.pending ??= this.fetchCore(CORE_METRICS_TIMEOUT_MS)
      .then(
        (text) => {
          this.metrics.coreMetricsUp.set(1);
          return text;
        },
        () => {
          this.metrics.coreMetricsUp.set(0);
          return "";
        },
      )
      .then((text) => {
        this.cached = { at: this.now(), text };
        this.pending = undefined;
        return text;
      });
    return this.pending;
  }
}
