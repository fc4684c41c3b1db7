import { trace, type Context } from "@opentelemetry/api";
import { SPAN_ATTRIBUTES } from "../contracts/runtime/trace-context.js";
import type { Context as KoaContext } from "koa";
import type { CallContext } from "./core-client.js";

/** The caller's verified key, by request; kept out of ctx.state so no log of the state can carry it. */
const callerKeys = new WeakMap<KoaContext, string>();

export function setCallerKey(ctx: KoaContext, key: string): void {
  callerKeys.set(ctx, key);
}

/**
 * The correlation id, trace context and caller's key of an HTTP request, for
 * its calls to core: core checks the caller's own key (its role, its session
 * budgets) rather than trusting the edge's word for it.
 */
export function callContext(ctx: KoaContext): CallContext {
  return { correlationId: ctx.state.correlationId as string, trace: ctx.state.traceContext as Context, key: callerKeys.get(ctx) };
}

/** Names the request's task on its span, so a trace can be found by task id. */
export function noteTask(ctx: KoaContext, taskId: string): void {
  trace.getSpan(ctx.state.traceContext as Context)?.setAttribute(SPAN_ATTRIBUTES.taskId, taskId);
}
