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

/** Metric labels of a task's counters; the replica's are empty when it ran nowhere. */
export function replicaLabels(task: Task, replica: Replica | undefined) {
  return {
    engine: engines.name(task.request.engine),
    engine_version: replica?.engineVersion ?? "",
    pool_id: task.poolId,
    replica_id: replica?.id ?? "",
  };
}

/** Labels of the latency histograms. */
export function latencyLabels(task: Task, replica: Replica) {
  return {
    engine: engines.name(task.request.engine),
    engine_version: replica.engineVersion,
    pool_id: task.poolId,
    priority: priorities.name(task.request.priority),
  };
}

/** Labels of a pool's gauges: the engine version is the first one a replica of the pool reported. */
export function poolLabels(pool: PoolState, replicas: readonly Replica[]) {
  const version = replicas.find((r) => r.engineVersion)?.engineVersion ?? "";
  return { engine: engines.name(pool.engine), engine_version: version, pool_id: pool.id };
}

/** Keeps the `reason` label of tasks_canceled_total within its small fixed budget. */
export function cancelReasonLabel(reason: string): string {
  return ["client", "disconnect", "operator", "watchdog", "shutdown", "queue_full"].includes(reason) ? reason : "other";
}
