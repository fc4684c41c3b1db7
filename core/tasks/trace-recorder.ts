import type { TaskEvent } from "../../contracts/gen/llama_orch/v1/task.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { publicTranscript } from "../../contracts/task-events.js";
import { encodeDocument, idOf } from "../artifacts/artifact-document.js";
import type { ArtifactInput, ArtifactStore } from "../artifacts/artifact-store.js";
import type { Task } from "./task.js";

type Terminal = Extract<TaskEvent["kind"], { $case: "end" } | { $case: "error" }>;

/**
 * Keeps each finished task's transcript (every event as the client saw it)
 * as a `trace` artifact. The id is computed up front so the terminal event can
 * name it; the write happens in the background and never delays the stream.
 */
export class TraceRecorder {
  constructor(
    private readonly store: ArtifactStore,
    private readonly logger: Logger,
  ) {}

  record(task: Task, terminal: Terminal): string {
    const events: TaskEvent[] = [...task.log.events, { seq: task.log.lastSeq + 1, kind: terminal }];
    const doc: ArtifactInput = {
      kind: "trace",
      content: { task_id: task.id, session_id: task.request.sessionId, events: publicTranscript(events) },
      tags: ["transcript", `task:${task.id}`],
      metadata: { pool_id: task.poolId, replica_id: task.replica?.id ?? "", correlation_id: task.correlationId, tokens_out: task.tokensOut },
    };
    const id = idOf(encodeDocument(doc));
    this.store.put(doc).catch((err: Error) =>
      this.logger.error({ err, job_id: task.id, artifact_id: id }, `could not store the transcript of task ${task.id}: ${err.message}`),
    );
    return id;
  }
}
