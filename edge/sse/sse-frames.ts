import type { TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";
import { publicEventData } from "../../contracts/task-events.js";

/**
 * Renders task events as SSE frames, all of them in one string so a batch of
 * events leaves in one socket write. `id:` is the event's sequence number, so
 * a reconnecting client's Last-Event-ID resumes exactly after it. Tokens are
 * rendered by hand: no object per token on the hot path.
 */
export function renderFrames(events: readonly TaskEvent[]): string {
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
    // JSON.stringify drops undefined members, which is how optional fields stay absent.
    out += `id: ${ev.seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  }
  return out;
}
