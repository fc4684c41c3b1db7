import type { TaskEvent } from "./gen/llama_orch/v1/task.js";
import { Engine } from "./gen/llama_orch/v1/common.js";
import { engines, errorCodes, stopReasonName } from "./enums.js";

/** Engines the public API names (the OpenAPI Engine enum). */
const PUBLIC_ENGINES = new Set([Engine.ENGINE_LLAMACPP, Engine.ENGINE_VLLM, Engine.ENGINE_TGI, Engine.ENGINE_TRITON, Engine.ENGINE_OPENAI]);

export function publicEngineName(engine: Engine): string | undefined {
  return PUBLIC_ENGINES.has(engine) ? engines.name(engine) : undefined;
}

type NonToken = Exclude<NonNullable<TaskEvent["kind"]>, { $case: "tokens" }>;

/**
 * The public (SSE `data:`) form of every event but tokens, which the SSE
 * writer renders itself without building objects. Unset optional fields stay
 * undefined so JSON.stringify leaves them out.
 */
export function publicEventData(k: NonToken): { event: string; data: Record<string, unknown> } {
  switch (k.$case) {
    case "started":
      return { event: "started", data: { queue_position: k.started.queuePosition, predicted_start_ms: k.started.predictedStartMs } };
    case "metrics": {
      const m = k.metrics;
      return {
        event: "metrics",
        data: {
          queue_depth: m.queueDepth,
          queue_position: m.queuePosition,
          predicted_start_ms: m.predictedStartMs,
          on_time_probability: m.onTimeProbability,
          kv_warmth: m.kvWarmth,
          tokens_budget_remaining: m.tokensBudgetRemaining,
          time_budget_remaining_ms: m.timeBudgetRemainingMs,
          cost_budget_remaining: m.costBudgetRemaining,
          pool_id: m.poolId || undefined,
          replica_id: m.replicaId || undefined,
          engine_version: m.engineVersion || undefined,
          waits_for_model_load: m.waitsForModelLoad,
        },
      };
    }
    case "embedding":
      return { event: "embedding", data: { i: k.embedding.index, embedding: k.embedding.vector } };
    case "rerank":
      return { event: "rerank", data: { i: k.rerank.index, relevance_score: k.rerank.relevanceScore } };
    case "end":
      return {
        event: "end",
        data: {
          tokens_out: k.end.tokensOut,
          decode_ms: k.end.decodeTimeMs,
          decode_time_ms: k.end.decodeTimeMs,
          tokens_in: k.end.tokensIn,
          stop_reason: stopReasonName(k.end.stopReason),
          trace_artifact_id: k.end.traceArtifactId || undefined,
        },
      };
    case "error":
      return {
        event: "error",
        data: {
          code: errorCodes.name(k.error.code),
          message: k.error.message,
          engine: publicEngineName(k.error.engine),
          retriable: k.error.retriable,
          trace_artifact_id: k.error.traceArtifactId || undefined,
        },
      };
  }
}

/**
 * Renders task events as SSE frames, all of them in one string so a batch of
 * events leaves in one socket write (and a whole transcript is one string).
 * `id:` is the event's sequence number, so a reconnecting client's
 * Last-Event-ID resumes exactly after it. Tokens are rendered by hand: no
 * object per token on the hot path.
 */
export function renderSse(events: readonly TaskEvent[]): string {
  let out = "";
  for (const ev of events) {
    const k = ev.kind;
    if (!k) continue;
    if (k.$case === "tokens") {
      const { firstIndex, texts } = k.tokens;
      for (let j = 0; j < texts.length; j++) {
        out += `id: ${ev.seq + j}\nevent: token\ndata: {"t":${JSON.stringify(texts[j])},"i":${firstIndex + j}}\n\n`;
      }
      continue;
    }
    const { event, data } = publicEventData(k);
    // Seq 0 is no event of the task's log but the edge's own (core unreachable, or the edge shutting down): without an id, a reconnect resumes after the last real one.
    const id = ev.seq > 0 ? `id: ${ev.seq}\n` : "";
    // JSON.stringify drops undefined members, which is how optional fields stay absent.
    out += `${id}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  }
  return out;
}
