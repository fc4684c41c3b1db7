import { Counter, Gauge, Registry } from "prom-client";

/** The edge's own metrics, served at its /metrics with its process figures. */
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
  };
}

export type EdgeMetrics = ReturnType<typeof createEdgeMetrics>;
