import type { TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { renderSse } from "../../contracts/task-events.js";
import { idOf } from "../artifacts/artifact-document.js";
import type { ArtifactStore } from "../artifacts/artifact-store.js";
import { transcriptCanonical } from "../artifacts/transcript-json.js";
import type { Task, TerminalEvent } from "./task.js";

/**
 * Keeps each finished task's SSE transcript (the exact text a client received)
 * as a `trace` artifact. Its canonical JSON is written directly and hashed once:
 * the id is computed up front so the terminal event can name it; the append to
 * the store's transcript log happens in the background.
 */
export class TraceRecorder {
  constructor(
    private readonly store: ArtifactStore,
    private readonly logger: Logger,
  ) {}

  record(task: Task, terminal: TerminalEvent): string {
    const events: TaskEvent[] = [...task.log.events, { seq: task.log.lastSeq + 1, kind: terminal }];
    const canonical = transcriptCanonical({
      taskId: task.id,
      sessionId: task.request.sessionId,
      sse: renderSse(events),
      poolId: task.poolId,
      replicaId: task.replica?.id ?? "",
      correlationId: task.correlationId,
      tokensOut: task.tokensOut,
    });
    const id = idOf(canonical);
    this.store
      .putTranscript(id, canonical)
      .catch((err: Error) =>
        this.logger.error({ err, job_id: task.id, artifact_id: id }, `could not store the transcript of task ${task.id}: ${err.message}`),
      );
    return id;
  }
}
