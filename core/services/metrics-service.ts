import type { MetricsServiceServer } from "../../contracts/gen/llama_orch/v1/metrics.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import type { CoreMetrics } from "../metrics.js";
import { respond } from "./respond.js";

/**
 * MetricsService: core's contract series for the edge's /metrics. Only core's
 * own registry, never its process figures: the edge serves its own process_*
 * and nodejs_* series, and one exposition may hold each name only once.
 */
export function metricsService(metrics: CoreMetrics, logger: Logger): MetricsServiceServer {
  return {
    getMetrics(_call, callback) {
      respond(callback, logger, async () => ({ text: await metrics.registry.metrics() }));
    },
  };
}
