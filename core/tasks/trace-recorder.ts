import { Artifact, ArtifactKind } from "../../contracts/gen/llama_orch/v1/artifact.js";
import type { TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { renderSse } from "../../contracts/task-events.js";
import { encodeDocument, idOf } from "../artifacts/artifact-document.js";
import type { ArtifactStore } from "../artifacts/artifact-store.js";
import type { Task, TerminalEvent } from "./task.js";

/**
 * Keeps each finished task's SSE transcript (the exact text a client received)
 * as a `trace` artifact. One string rather than an object per event keeps the
 * hashing cheap: the id is computed up front so the terminal event can name
 * it; the write happens in the background.
 */
export class TraceRecorder {
  constructor(
    private readonly store: ArtifactStore,
    private readonly logger: Logger,
  ) {}

  record(task: Task, terminal: TerminalEvent): string {
    const events: TaskEvent[] = [...task.log.events, { seq: task.log.lastSeq + 1, kind: terminal }];
    const doc = Artifact.fromPartial({
      kind: ArtifactKind.ARTIFACT_KIND_TRACE,
      content: { task_id: task.id, session_id: task.request.sessionId, format: "text/event-stream", sse: renderSse(events) },
      tags: ["transcript", `task:${task.id}`],
      metadata: {
        pool_id: task.poolId,
        replica_id: task.replica?.id ?? "",
        correlation_id: task.correlationId,
        tokens_out: task.tokensOut,
      },
    });
    const canonical = encodeDocument(doc);
    const id = idOf(canonical);
    this.store
      .put(doc, { canonical, id })
      .catch((err: Error) =>
        this.logger.error({ err, job_id: task.id, artifact_id: id }, `could not store the transcript of task ${task.id}: ${err.message}`),
      );
    return id;
  }
}
