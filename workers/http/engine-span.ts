import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { startSpan } from "../../contracts/runtime/trace-context.js";

/** One engine request's span: ended once, when its response is read to the end or the request failed. */
export interface EngineSpan {
  end(outcome: { status?: number; error?: unknown }): void;
}

/**
 * The span of a request to the engine, when it is made for a traced
 * generation (the generation's span is active, see generation-span.ts):
 * its `traceparent` goes into `headers`, so an engine that records traces
 * continues the same one. Undefined otherwise (health polls, model
 * listings, and every request while tracing is off), at no cost.
 */
export function startEngineSpan(method: string, origin: string, path: string, headers: Record<string, string>): EngineSpan | undefined {
  const parent = context.active();
  if (trace.getSpan(parent) === undefined) return undefined;
  const { span, ctx } = startSpan(
    `${method} ${path}`,
    parent,
    { "http.request.method": method, "url.full": origin + path, "server.address": new URL(origin).hostname },
    SpanKind.CLIENT,
  );
  propagation.inject(ctx, headers);
  let ended = false;
  return {
    end({ status, error }) {
      if (ended) return;
      ended = true;
      if (status !== undefined) span.setAttribute("http.response.status_code", status);
      if (error !== undefined) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : "engine request failed" });
      }
      span.end();
    },
  };
}
