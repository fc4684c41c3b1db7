import type { Context } from "@opentelemetry/api";
import type { Context as KoaContext } from "koa";
import type { CallContext } from "./core-client.js";

/** The correlation id and trace context of an HTTP request, for its calls to core. */
export function callContext(ctx: KoaContext): CallContext {
  return { correlationId: ctx.state.correlationId as string, trace: ctx.state.traceContext as Context };
}
