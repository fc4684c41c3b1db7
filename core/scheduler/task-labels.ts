import { engines, priorities } from "../../contracts/enums.js";
import { traceIdOf } from "../../contracts/runtime/trace-context.js";
import type { Replica } from "../registry/replica.js";
import type { Task } from "../tasks/task.js";
import type { PoolState } from "./pool-state.js";

/** The log fields every line about a task carries. */
export function taskLogFields(task: Task) {
  return {
    job_id: task.id,
    session_id: task.request.sessionId,
    engine: engines.name(task.request.engine),
    engine_version: task.replica?.engineVersion ?? "",
    pool_id: task.poolId,
    replica_id: task.replica?.id ?? "",
    correlation_id: task.correlationId,
    trace_id: traceIdOf(task.traceContext),
  };
}

/**
 * A metric label's value where it has none at that moment: the replica of a
 * task still queued, the engine version of a pool no replica has described,
 * the engine of a catalog check that ran no engine. Prometheus treats an empty
 * label as no label, so `""` would drop out of every by (replica_id).
 */
export const NO_LABEL_VALUE = "none";

/** Metric labels of a task's counters; the replica's are NO_LABEL_VALUE when it ran nowhere. */
export function replicaLabels(task: Task, replica: Replica | undefined) {
  return {
    engine: engines.name(task.request.engine),
    engine_version: replica?.engineVersion || NO_LABEL_VALUE,
    pool_id: task.poolId,
    replica_id: replica?.id ?? NO_LABEL_VALUE,
  };
}

/** Labels of a replica's token counters, as replicaLabels gives them for the tasks it runs. */
export function replicaSeriesLabels(replica: Replica) {
  return {
    engine: engines.name(replica.registration.engine),
    engine_version: replica.engineVersion || NO_LABEL_VALUE,
    pool_id: replica.poolId,
    replica_id: replica.id,
  };
}

/** Labels of the latency histograms. */
export function latencyLabels(task: Task, replica: Replica) {
  return {
    engine: engines.name(task.request.engine),
    engine_version: replica.engineVersion || NO_LABEL_VALUE,
    pool_id: task.poolId,
    priority: priorities.name(task.request.priority),
  };
}

/** Labels of a pool's gauges: the engine version is the first one a replica of the pool reported. */
export function poolLabels(pool: PoolState, replicas: readonly Replica[]) {
  const version = replicas.find((r) => r.engineVersion)?.engineVersion || NO_LABEL_VALUE;
  return { engine: engines.name(pool.engine), engine_version: version, pool_id: pool.id };
}

/** Keeps the `reason` label of tasks_canceled_total within its small fixed budget. */
export function cancelReasonLabel(reason: string): string {
  return ["client", "disconnect", "operator", "watchdog", "shutdown", "queue_full"].includes(reason) ? reason : "other";
}
