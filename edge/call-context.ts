import { trace, type Context } from "@opentelemetry/api";
import { SPAN_ATTRIBUTES } from "../contracts/runtime/trace-context.js";
import type { Context as KoaContext } from "koa";
import type { CallContext } from "./core-client.js";

/** The correlation id and trace context of an HTTP request, for its calls to core. */
export function callContext(ctx: KoaContext): CallContext {
  return { correlationId: ctx.state.correlationId as string, trace: ctx.state.traceContext as Context };
}

/** Names the request's task on its span, so a trace can be found by task id. */
export function noteTask(ctx: KoaContext, taskId: string): void {
  trace.getSpan(ctx.state.traceContext as Context)?.setAttribute(SPAN_ATTRIBUTES.taskId, taskId);
}
