import { randomUUID } from "node:crypto";
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
    const { span, ctx: traceContext } = startSpan(`${ctx.method} edge`, traceContextFromHeaders(ctx.req.headers), {
      "http.method": ctx.method,
      "http.target": ctx.path,
    });
    ctx.state.traceContext = traceContext;
    try {
      await next();
    } finally {
      span.setAttribute("http.status_code", ctx.respond === false ? ctx.res.statusCode : ctx.status);
      span.end();
    }
  };
}
