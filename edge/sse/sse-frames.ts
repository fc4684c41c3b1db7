import type { TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";
import { errorCodes, stopReasonName } from "../../contracts/enums.js";
import { publicEngineName } from "../http-errors.js";

/**
 * Renders task events as SSE frames, all of them in one string so a batch of
 * events leaves in one socket write. `id:` is the event's sequence number, so
 * a reconnecting client's Last-Event-ID resumes exactly after it.
 */
export function renderFrames(events: readonly TaskEvent[]): string {
  let out = "";
  for (const ev of events) {
    const k = ev.kind;
    switch (k?.$case) {
      case "tokens": {
        const { firstIndex, texts } = k.tokens;
        for (let j = 0; j < texts.length; j++) {
          out += `id: ${ev.seq + j}\nevent: token\ndata: {"t":${JSON.stringify(texts[j])},"i":${firstIndex + j}}\n\n`;
        }
        break;
      }
      case "started":
        out += frame(ev.seq, "started", { queue_position: k.started.queuePosition, predicted_start_ms: k.started.predictedStartMs });
        break;
      case "metrics": {
        const m = k.metrics;
        out += frame(ev.seq, "metrics", {
          queue_depth: m.queueDepth,
          queue_position: m.queuePosition,
          on_time_probability: m.onTimeProbability,
          kv_warmth: m.kvWarmth,
          tokens_budget_remaining: m.tokensBudgetRemaining,
          time_budget_remaining_ms: m.timeBudgetRemainingMs,
          cost_budget_remaining: m.costBudgetRemaining,
          pool_id: m.poolId || undefined,
          replica_id: m.replicaId || undefined,
          engine_version: m.engineVersion || undefined,
        });
        break;
      }
      case "end":
        out += frame(ev.seq, "end", {
          tokens_out: k.end.tokensOut,
          decode_ms: k.end.decodeTimeMs,
          decode_time_ms: k.end.decodeTimeMs,
          tokens_in: k.end.tokensIn,
          stop_reason: stopReasonName(k.end.stopReason),
        });
        break;
      case "error":
        out += frame(ev.seq, "error", { code: errorCodes.name(k.error.code), message: k.error.message, engine: publicEngineName(k.error.engine) });
        break;
      default:
        break;
    }
  }
  return out;
}

function frame(seq: number, event: string, data: object): string {
  // JSON.stringify drops undefined members, which is how optional fields stay absent.
  return `id: ${seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
