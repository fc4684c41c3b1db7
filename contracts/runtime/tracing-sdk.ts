// The OpenTelemetry trace SDK, loaded only by tracing.ts when tracing is on.
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import type { Tracing } from "./tracing.js";

export function startTraceSdk(component: string): Tracing {
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the env detector) win over the default name.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": `llorch-${component}`, "llama_orch.component": component }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  // The context manager carries a generation's span down to the engine HTTP call. The propagator stays
  // trace-context.ts's, registered already; a second registration would be refused.
  provider.register({ propagator: null });
  return { shutdown: () => provider.shutdown() };
}
