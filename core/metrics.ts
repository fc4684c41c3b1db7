import { Counter, Gauge, Histogram, Registry } from "prom-client";

const REPLICA_LABELS = ["engine", "engine_version", "pool_id", "replica_id"] as const;
const POOL_PRIORITY_LABELS = ["engine", "engine_version", "pool_id", "priority"] as const;

type Registers = Registry[];

/**
 * Core's Prometheus metrics. Names and labels follow the project's metrics
 * lint list; label values stay within its cardinality budget (engine names,
 * pool and replica ids, priorities, a small fixed set of reasons).
 * The groups register in this order, which is the order /metrics lists them in.
 */
export function createCoreMetrics() {
  const registry = new Registry();
  const r = [registry];
  return {
    registry,
    ...taskMetrics(r),
    ...latencyAndTokenMetrics(r),
    ...admissionAndPlacementMetrics(r),
    ...fleetMetrics(r),
  };
}

export type CoreMetrics = ReturnType<typeof createCoreMetrics>;

/** A task's way through a pool queue: admitted, dispatched, cancelled or refused, and how many wait. */
function taskMetrics(r: Registers) {
  return {
    tasksEnqueued: new Counter({
      name: "tasks_enqueued_total",
      help: "Tasks admitted to a pool queue",
      labelNames: [...REPLICA_LABELS, "priority"],
      registers: r,
    }),
    tasksStarted: new Counter({
      name: "tasks_started_total",
      help: "Tasks dispatched to a replica",
      labelNames: [...REPLICA_LABELS, "priority"],
      registers: r,
    }),
    tasksCanceled: new Counter({
      name: "tasks_canceled_total",
      help: "Tasks cancelled, by reason",
      labelNames: [...REPLICA_LABELS, "reason"],
      registers: r,
    }),
    tasksRejected: new Counter({
      name: "tasks_rejected_total",
      help: "Tasks refused at admission, by reason",
      labelNames: ["engine", "reason"],
      registers: r,
    }),
    queueDepth: new Gauge({
      name: "queue_depth",
      help: "Queued tasks per pool and priority",
      labelNames: POOL_PRIORITY_LABELS,
      registers: r,
    }),
  };
}

/** How fast tasks run once dispatched, and the tokens they move. */
function latencyAndTokenMetrics(r: Registers) {
  return {
    firstTokenMs: new Histogram({
      name: "latency_first_token_ms",
      help: "Admission to first token, ms",
      labelNames: POOL_PRIORITY_LABELS,
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000],
      registers: r,
    }),
    decodeMs: new Histogram({
      name: "latency_decode_ms",
      help: "First dispatch to end of decode, ms",
      labelNames: POOL_PRIORITY_LABELS,
      buckets: [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000],
      registers: r,
    }),
    tokensIn: new Counter({ name: "tokens_in_total", help: "Prompt tokens processed", labelNames: [...REPLICA_LABELS], registers: r }),
    tokensOut: new Counter({
      name: "tokens_out_total",
      help: "Tokens generated and relayed",
      labelNames: [...REPLICA_LABELS],
      registers: r,
    }),
  };
}

/** The queue policy's refusals and what placement decided among how many pools. */
function admissionAndPlacementMetrics(r: Registers) {
  return {
    backpressure: new Counter({
      name: "admission_backpressure_events_total",
      help: "Admissions refused or shed by queue policy",
      labelNames: ["engine", "policy"],
      registers: r,
    }),
    placementDecisions: new Counter({
      name: "placement_decisions_total",
      help: "Placement outcomes",
      labelNames: ["outcome", "pinned", "fallback"],
      registers: r,
    }),
    placementCandidates: new Gauge({
      name: "placement_candidates_considered",
      help: "Candidate pools considered by the last placement",
      registers: r,
    }),
  };
}

/** The replicas registered with core and the catalog models they serve. */
function fleetMetrics(r: Registers) {
  return {
    replicasReady: new Gauge({
      name: "replicas_ready",
      help: "Registered replicas that are live and ready, per pool",
      labelNames: ["pool_id"],
      registers: r,
    }),
    catalogVerifications: new Counter({
      name: "catalog_verifications_total",
      help: "Catalog verifications by result and reason",
      labelNames: ["result", "reason", "engine"],
      registers: r,
    }),
    modelState: new Gauge({
      name: "model_state",
      help: "1 for the state each catalog model is in, 0 for the others",
      labelNames: ["model_id", "state"],
      registers: r,
    }),
    workerResets: new Counter({
      name: "worker_resets_total",
      help: "Streams ended because their sidecar went away",
      labelNames: ["pool_id", "replica_id"],
      registers: r,
    }),
  };
}
