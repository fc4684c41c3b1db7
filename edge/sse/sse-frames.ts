import type { TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";
import { renderSse } from "../../contracts/task-events.js";

/**
 * The edge's SSE writer renders with the same function core uses for stored
 * transcripts, so a transcript is byte for byte what a client received.
 */
export function renderFrames(events: readonly TaskEvent[]): string {
  return renderSse(events);
}
