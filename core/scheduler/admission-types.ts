import type { CreateTaskRequest } from "../../contracts/gen/llama_orch/v1/task.js";
import type { OrchError } from "../../contracts/runtime/metadata.js";
import type { TaskJournalSink } from "../journal/task-journal.js";
import type { BudgetLimits, BudgetsRemaining } from "../sessions/session-store.js";
import type { Task } from "../tasks/task.js";
import type { TraceRecorder } from "../tasks/trace-recorder.js";

// What the scheduler's admission takes and gives, and what other parts of core plug into it.

/** Who sent a task: the key's identity (it owns the task) and the key's own session budgets. */
export interface Submitter {
  owner?: string;
  budgets?: BudgetLimits;
}

export interface Admission {
  task: Task;
  queuePosition: number;
  predictedStartMs: number;
  budgets: BudgetsRemaining;
  /** Resolves once the admission is in the journal (at once without one): only then may it be acknowledged. */
  durable: Promise<void>;
}

/** What other parts of core plug into admission and finishing. */
export interface SchedulerHooks {
  /** The catalog's refusals (retired or untrusted models). */
  admissionCheck?: (modelRef: string) => OrchError | undefined;
  /** What to say (or do) when no pool serves a task's model. */
  unservedModel?: (request: CreateTaskRequest) => OrchError | undefined;
  traceRecorder?: TraceRecorder;
  /** Where admitted tasks are journaled, so a restarted core queues them again. */
  journal?: TaskJournalSink;
}
