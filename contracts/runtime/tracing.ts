// Whether this process records spans. Off unless the standard OpenTelemetry
// variables ask for it; then, and only then, the SDK is loaded (a dynamic
// import), so a process without them pays nothing beyond the API's no-op
// spans, and trace context still travels (trace-context.ts).

/** A running trace SDK: shutdown exports what is still buffered. */
export interface Tracing {
  shutdown(): Promise<void>;
}

/** Any of these turns tracing on (an endpoint, or a service name for the default endpoint, http://localhost:4318). */
export const TRACING_ENV = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"] as const;

/** On when a TRACING_ENV variable is set, unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none says no. */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env["OTEL_SDK_DISABLED"]?.trim().toLowerCase() === "true") return false;
  if (env["OTEL_TRACES_EXPORTER"]?.trim().toLowerCase() === "none") return false;
  return TRACING_ENV.some((name) => (env[name] ?? "").trim() !== "");
}

/**
 * Starts the trace SDK for `component` (core, edge, worker) when the
 * environment asks for it: spans go in batches to the OTLP/HTTP endpoint,
 * under the service name OTEL_SERVICE_NAME, else `llorch-<component>`.
 * The exporter's and batcher's own variables (OTEL_EXPORTER_OTLP_HEADERS,
 * OTEL_BSP_SCHEDULE_DELAY, OTEL_TRACES_SAMPLER, …) apply as documented.
 */
export async function startTracing(component: string, env: NodeJS.ProcessEnv = process.env): Promise<Tracing | undefined> {
  if (!tracingWanted(env)) return undefined;
  const { startTraceSdk } = await import("./tracing-sdk.js");
  return startTraceSdk(component);
}
