import { Counter, Gauge, Registry } from "prom-client";

/** The replica labels of metrics.lint.json, shared by every sidecar series. */
export interface ReplicaLabels {
  engine: string;
  engine_version: string;
  pool_id: string;
  replica_id: string;
}

/** How a Submit ended, as the `outcome` label (4 values: the lint budget for `outcome`). */
export type GenerationOutcome = "completed" | "canceled" | "failed" | "rejected";

/** State read at scrape time, so gauges cost nothing on the request path. */
export interface SidecarMetricsSource {
  labels(): ReplicaLabels;
  slotsTotal(): number;
  slotsFree(): number;
  kvCacheUsageRatio(): number | undefined;
}

export interface SidecarMetrics {
  /** A registry of its own: several sidecars may share one process in tests. */
  readonly registry: Registry;
  /** Once per Submit, at its end (never per token). */
  generationFinished(outcome: GenerationOutcome, tokensIn: number, tokensOut: number): void;
}

const REPLICA_LABELS = ["engine", "engine_version", "pool_id", "replica_id"] as const;

export function createSidecarMetrics(source: SidecarMetricsSource): SidecarMetrics {
  const registry = new Registry();
  const registers = [registry];
  const { tokensIn, tokensOut, generations } = generationCounters(registers, source);
  for (const gauge of SCRAPED_GAUGES) scrapedGauge(registers, source, gauge);

  return {
    registry,
    generationFinished(outcome, nIn, nOut) {
      const labels = source.labels();
      generations.inc({ ...labels, outcome });
      if (nIn > 0) tokensIn.inc(labels, nIn);
      if (nOut > 0) tokensOut.inc(labels, nOut);
    },
  };
}

/**
 * The series generationFinished counts into, once per Submit. The token
 * counters are not tokens_in_total/tokens_out_total: core owns those (it
 * counts every task's tokens, whichever sidecar ran it), and the same names
 * here would make sum(tokens_out_total) count every token twice.
 */
function generationCounters(registers: Registry[], source: SidecarMetricsSource) {
  return {
    tokensIn: zeroedCounter(registers, source, "worker_tokens_in_total", "Prompt tokens of generations run on this replica."),
    tokensOut: zeroedCounter(registers, source, "worker_tokens_out_total", "Tokens streamed by this replica."),
    generations: new Counter({
      name: "worker_generations_total",
      help: "Submit calls by how they ended: completed, canceled, failed, rejected (never started).",
      labelNames: [...REPLICA_LABELS, "outcome"],
      registers,
    }),
  };
}

/**
 * A counter whose series for the current labels exists at 0 from the first
 * scrape after the replica is named and its engine described: rate() and
 * increase() then see the replica's first tokens, which they miss when a
 * series appears with them. (Before that, a zero would stay behind under
 * labels that are about to change.)
 */
function zeroedCounter(registers: Registry[], source: SidecarMetricsSource, name: string, help: string) {
  return new Counter({
    name,
    help,
    labelNames: REPLICA_LABELS,
    registers,
    collect() {
      const labels = source.labels();
      if (labels.replica_id && labels.engine_version) this.inc(labels, 0);
    },
  });
}

interface ScrapedGauge {
  name: string;
  help: string;
  /** The value now; undefined leaves the gauge without a sample. */
  read: (source: SidecarMetricsSource) => number | undefined;
}

/** The sidecar's gauges, in the order /metrics lists them (worker_slots, not _total: Prometheus keeps that suffix for counters). */
const SCRAPED_GAUGES: readonly ScrapedGauge[] = [
  { name: "worker_slots", help: "Generation slots of this replica's engine.", read: (s) => s.slotsTotal() },
  { name: "worker_slots_free", help: "Generation slots not running anything now.", read: (s) => s.slotsFree() },
  {
    name: "kv_cache_usage_ratio",
    help: "Fill of the engine's KV cache, 0..1, when the engine reports it.",
    read: (s) => s.kvCacheUsageRatio(),
  },
];

/**
 * Registers one gauge that reads its value at scrape time. Labels are read at
 * collection time too, because engine_version and the replica id may only be
 * known after start.
 */
function scrapedGauge(registers: Registry[], source: SidecarMetricsSource, { name, help, read }: ScrapedGauge): void {
  new Gauge({
    name,
    help,
    labelNames: REPLICA_LABELS,
    registers,
    collect() {
      this.reset();
      const value = read(source);
      if (value !== undefined) this.set(source.labels(), value);
    },
  });
}
