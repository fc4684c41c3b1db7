import { collectDefaultMetrics, Registry } from "prom-client";

let processRegistry: Registry | undefined;

/**
 * prom-client's gauges that end in _total, which Prometheus keeps for
 * counters (promtool flags them); nodejs_active_handles and friends give the
 * same counts by type.
 */
const MISNAMED_DEFAULTS = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

/**
 * This process's own figures (process_cpu_seconds_total,
 * process_resident_memory_bytes, nodejs_* for the heap, GC and event loop).
 * One registry per process, made on first use: they describe the process, not
 * a component, so two sidecars sharing a process in a test share them too.
 */
export function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
    for (const name of MISNAMED_DEFAULTS) processRegistry.removeSingleMetric(name);
  }
  return processRegistry;
}

/** Several registries as one text exposition, in the order given (their metric names must not overlap). */
export async function exposition(registries: readonly Registry[]): Promise<string> {
  const texts = await Promise.all(registries.map((r) => r.metrics()));
  return texts.filter((t) => t.length > 0).join("\n");
}
