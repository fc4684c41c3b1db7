import type { Metadata } from "@grpc/grpc-js";
import {
  context as otelContext,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Span,
  type SpanKind,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
} from "@opentelemetry/api";

const TRACEPARENT = "traceparent";
const TRACESTATE = "tracestate";
const FORMAT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * W3C Trace Context (`traceparent`/`tracestate`) on the OpenTelemetry API.
 * Registered as the global propagator unless the host application installed
 * an SDK with its own; with no SDK, spans are non-recording and the caller's
 * trace context still travels edge -> core -> sidecar unchanged.
 */
class W3CTraceContext implements TextMapPropagator {
  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    const sc = trace.getSpanContext(ctx);
    if (!sc || !isSpanContextValid(sc)) return;
    setter.set(carrier, TRACEPARENT, `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & TraceFlags.SAMPLED).toString(16)}`);
    const state = sc.traceState?.serialize();
    if (state) setter.set(carrier, TRACESTATE, state);
  }

  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    const raw = getter.get(carrier, TRACEPARENT);
    const header = Array.isArray(raw) ? raw[0] : raw;
    const m = header ? FORMAT.exec(header.trim()) : null;
    if (!m) return ctx;
    const sc = { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16) & TraceFlags.SAMPLED, isRemote: true };
    return isSpanContextValid(sc) ? trace.setSpanContext(ctx, sc) : ctx;
  }

  fields(): string[] {
    return [TRACEPARENT, TRACESTATE];
  }
}

propagation.setGlobalPropagator(new W3CTraceContext());

const metadataGetter: TextMapGetter<Metadata> = {
  keys: (md) => Object.keys(md.getMap()),
  get: (md, key) => {
    const v = md.get(key)[0];
    return typeof v === "string" ? v : undefined;
  },
};
const metadataSetter: TextMapSetter<Metadata> = { set: (md, key, value) => md.set(key, value) };

const headerGetter: TextMapGetter<Record<string, string | string[] | undefined>> = {
  keys: (h) => Object.keys(h),
  get: (h, key) => h[key],
};

/** The trace context a client sent in HTTP headers (ROOT_CONTEXT when none). */
export function traceContextFromHeaders(headers: Record<string, string | string[] | undefined>): Context {
  return propagation.extract(ROOT_CONTEXT, headers, headerGetter);
}

export function traceContextFromMetadata(md: Metadata): Context {
  return propagation.extract(ROOT_CONTEXT, md, metadataGetter);
}

export function injectTraceContext(ctx: Context, md: Metadata): Metadata {
  propagation.inject(ctx, md, metadataSetter);
  return md;
}

/** The trace id to put on log lines, when the request is traced. */
export function traceIdOf(ctx: Context): string | undefined {
  const sc = trace.getSpanContext(ctx);
  return sc && isSpanContextValid(sc) ? sc.traceId : undefined;
}

/** The attributes by which every process's spans name what they are about. */
export const SPAN_ATTRIBUTES = {
  taskId: "llama_orch.task_id",
  poolId: "llama_orch.pool_id",
  replicaId: "llama_orch.replica_id",
  tokensIn: "llama_orch.tokens_in",
  tokensOut: "llama_orch.tokens_out",
} as const;

const tracer = trace.getTracer("llama-orch");

/**
 * A span under `parent`, and the context to hand to the next hop. Without a
 * trace SDK (tracing.ts) it is the API's no-op span, which still carries the
 * parent's trace context on.
 */
export function startSpan(name: string, parent: Context, attributes: Attributes = {}, kind?: SpanKind): { span: Span; ctx: Context } {
  const span = tracer.startSpan(name, { attributes, kind }, parent);
  return { span, ctx: trace.setSpan(parent, span) };
}

export { otelContext };
