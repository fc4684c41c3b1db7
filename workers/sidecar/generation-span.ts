import { SpanKind, SpanStatusCode, type Context } from "@opentelemetry/api";
import { SPAN_ATTRIBUTES, startSpan, traceContextFromMetadata } from "../../contracts/runtime/trace-context.js";
import type { GenerationOutcome } from "./metrics.js";
import type { SubmitCall, Terminal } from "./submit-stream.js";

/** One generation's span, under core's dispatch span (from the Submit call's metadata). */
export interface GenerationSpan {
  /** Active while the adapter generates, so the engine HTTP call is its child and the engine gets its traceparent. */
  ctx: Context;
  end(outcome: GenerationOutcome, stream: { tokensIn: number; tokensOut: number }, terminal: Terminal): void;
}

export function startGenerationSpan(call: SubmitCall, where: { poolId: string; replicaId: string; engine: string }): GenerationSpan {
  const { span, ctx } = startSpan(
    "llama_orch.generation",
    traceContextFromMetadata(call.metadata),
    {
      [SPAN_ATTRIBUTES.taskId]: call.request.taskId,
      [SPAN_ATTRIBUTES.poolId]: where.poolId,
      [SPAN_ATTRIBUTES.replicaId]: where.replicaId,
      "llama_orch.engine": where.engine,
      "llama_orch.max_tokens": call.request.maxTokens,
    },
    SpanKind.SERVER,
  );
  return {
    ctx,
    end(outcome, stream, terminal) {
      span.setAttributes({
        [SPAN_ATTRIBUTES.tokensIn]: stream.tokensIn,
        [SPAN_ATTRIBUTES.tokensOut]: stream.tokensOut,
        "llama_orch.outcome": outcome,
      });
      if (terminal.$case === "error") span.setStatus({ code: SpanStatusCode.ERROR, message: terminal.error.message });
      span.end();
    },
  };
}
