import { randomUUID } from "node:crypto";
import { SpanKind } from "@opentelemetry/api";
import type { Middleware } from "koa";
import { startSpan, traceContextFromHeaders } from "../../contracts/runtime/trace-context.js";

const HEADER = "X-Correlation-Id";
/** Visible ASCII only, bounded: anything else is replaced rather than echoed. */
const ACCEPTABLE = /^[\x21-\x7e]{1,128}$/;

/**
 * Echoes the caller's X-Correlation-Id (or mints a UUIDv4) on every response,
 * and continues the caller's W3C trace context (traceparent) in a request span
 * whose context every call to core carries.
 */
export function correlationId(): Middleware {
  return async (ctx, next) => {
    const given = ctx.get(HEADER);
    const id = ACCEPTABLE.test(given) ? given : randomUUID();
    ctx.state.correlationId = id;
    ctx.set(HEADER, id);
    const { span, ctx: traceContext } = startSpan(
      `${ctx.method} edge`,
      traceContextFromHeaders(ctx.req.headers),
      { "http.method": ctx.method, "http.target": ctx.path },
      SpanKind.SERVER,
    );
    ctx.state.traceContext = traceContext;
    try {
      await next();
    } finally {
      span.setAttribute("http.status_code", ctx.respond === false ? ctx.res.statusCode : ctx.status);
      // Named for the route once the router has matched it ("POST /v1/tasks"), as OpenTelemetry's HTTP conventions say.
      const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      if (typeof route === "string") {
        span.setAttribute("http.route", route);
        span.updateName(`${ctx.method} ${route}`);
      }
      span.end();
    }
  };
}
