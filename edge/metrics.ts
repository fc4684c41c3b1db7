import { Counter, Gauge, Registry } from "prom-client";

/** The edge's own metrics, served at its /metrics before core's (see metrics-page.ts). */
export function createEdgeMetrics() {
  const registry = new Registry();
  return {
    registry,
    httpRequests: new Counter({
      name: "http_requests_total",
      help: "HTTP requests answered by the edge, by route and status",
      labelNames: ["method", "route", "status"],
      registers: [registry],
    }),
    sseStreamsActive: new Gauge({ name: "sse_streams_active", help: "Open SSE task streams", registers: [registry] }),
    sseStreamsEnded: new Counter({
      name: "sse_streams_ended_total",
      help: "SSE task streams that ended, by how",
      labelNames: ["how"],
      registers: [registry],
    }),
    coreMetricsUp: new Gauge({
      name: "core_metrics_up",
      help: "1 when core answered the edge's last request for its metrics, 0 when it did not (core's series are missing then)",
      registers: [registry],
    }),
  };
}

export type EdgeMetrics = ReturnType<typeof createEdgeMetrics>;
