import type { ClientReadableStream } from "@grpc/grpc-js";
import { ROOT_CONTEXT, type Context, type Span } from "@opentelemetry/api";
import type { CreateTaskRequest } from "../../contracts/gen/llama_orch/v1/task.js";
import type { Replica } from "../registry/replica.js";
import type { SlotLease } from "../registry/slot-lease.js";
import { TaskEventLog } from "./task-event-log.js";

export type TaskState = "queued" | "running" | "finished";

/** One admitted task. The scheduler owns every mutation of it. */
export class Task {
  readonly log = new TaskEventLog();
  state: TaskState = "queued";
  /** Set while running: the replica and the Submit call feeding `log`. */
  replica: Replica | undefined;
  call: ClientReadableStream<unknown> | undefined;
  /** Held while running: the replica's slot, given back where running ends. */
  lease: SlotLease | undefined;
  /** Dispatch attempts; work that never started on a replica may be retried. */
  attempts = 0;
  tokensOut = 0;
  tokensIn = 0;
  readonly admittedAt = Date.now();
  dispatchedAt = 0;
  firstTokenAt = 0;
  finishedAt = 0;
  /** Last dispatch or token batch: the idle watchdog's clock. */
  lastProgressAt = 0;
  /** Predicted dispatch-to-end time on this pool, for queue predictions; undefined until measured. */
  predictedDurationMs: number | undefined;
  /** The queue position the client was last told, so movement frames go out only on change. */
  reportedPosition: number | undefined;
  /** Whether the replica running it holds the session's KV cache. */
  kvWarm = false;
  /** Open streams, and the timer that cancels the task when the last one has been gone too long. */
  readers = 0;
  graceTimer: NodeJS.Timeout | undefined;
  /** The task's span and the context that carries it to the sidecar. */
  span: Span | undefined;
  traceContext: Context = ROOT_CONTEXT;

  constructor(
    readonly request: CreateTaskRequest,
    /** The pool whose queue holds it; changes only when its pool lost every replica. */
    public poolId: string,
    /** The admitting request's X-Correlation-Id, for every later log line. */
    readonly correlationId: string,
  ) {}

  get id(): string {
    return this.request.taskId;
  }
}
