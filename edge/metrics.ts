import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

/** The edge's own metrics, served at its /metrics. */
export function createEdgeMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
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
