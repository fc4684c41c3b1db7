import type { Logger } from "../../contracts/runtime/logger.js";
import type { StopCause } from "./generation-end.js";
import { GenerationRecord, type HoldLimits } from "./generation-record.js";
import type { SubmitCall, Terminal } from "./submit-stream.js";

export interface HoldOptions extends HoldLimits {
  /** How long a generation whose call broke is held for a Resume (running or ended) before it is given up. */
  holdMs: number;
}

export const DEFAULT_HOLD: HoldOptions = { maxEvents: 10_000, maxBytes: 16 * 1024 * 1024, holdMs: 60_000 };

interface Entry {
  taskId: string;
  record: GenerationRecord;
  stop: (cause: StopCause) => void;
  /** Its call breaking leaves it running, held for a Resume. */
  detachable: boolean;
  /** The adapter is done with it (its terminal is in the record). */
  settled: boolean;
  /** The call it streams to now; undefined while held. */
  current: SubmitCall | undefined;
  /** Asked to stop (Cancel, shutdown, the hold ran out): a call that ends now does not make it held. */
  stopping: boolean;
  holdTimer: NodeJS.Timeout | undefined;
  log: Logger;
}

/** One generation's handle for the code that runs it. */
export interface RunningGeneration {
  record: GenerationRecord;
  /** The adapter is done: the terminal event goes to the call, or is held with the rest. */
  settle(terminal: Terminal, cause: StopCause | undefined): void;
}

/**
 * The sidecar's generations by task id, and the one owner of that map:
 * running ones (for Cancel and shutdown), and detachable ones whose call
 * broke, held (still running, or ended) until core resumes them, cancels
 * them, or the hold runs out. Registration lists the held ones.
 */
export class GenerationTable {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly hold: HoldOptions = DEFAULT_HOLD) {}

  isRunning(taskId: string): boolean {
    const entry = this.entries.get(taskId);
    return entry !== undefined && !entry.settled;
  }

  /** Task ids of the generations held for a core whose call broke. */
  heldTaskIds(): string[] {
    return [...this.entries.values()].filter((e) => e.current === undefined).map((e) => e.taskId);
  }

  /** A new generation streaming to `call`; `stop` aborts it with a cause. */
  start(call: SubmitCall, stop: (cause: StopCause) => void, log: Logger, onStarted: (tokensIn: number) => void): RunningGeneration {
    const taskId = call.request.taskId;
    // An ended generation held under this id belongs to an earlier attempt nobody came back for.
    this.drop(taskId);
    const entry: Entry = {
      taskId,
      record: new GenerationRecord(this.hold, onStarted, () => stop("hold_full")),
      stop,
      detachable: call.request.detachable,
      settled: false,
      current: undefined,
      stopping: false,
      holdTimer: undefined,
      log,
    };
    this.entries.set(taskId, entry);
    this.attach(entry, call, { tokens: 0, results: 0 });
    return { record: entry.record, settle: (terminal, cause) => this.settle(entry, terminal, cause) };
  }

  /** Hands a held generation to a resuming call; false when none is held under its task id. */
  resume(call: SubmitCall): boolean {
    const entry = this.entries.get(call.request.taskId);
    if (!entry?.detachable) return false;
    const from = { tokens: call.request.resume?.tokensReceived ?? 0, results: call.request.resume?.resultsReceived ?? 0 };
    entry.log.info(
      { event: "generation_resumed", tokens_received: from.tokens, tokens_out: entry.record.tokensOut, ended: entry.settled },
      `task ${entry.taskId} resumed after token ${from.tokens} of ${entry.record.tokensOut}${entry.settled ? " (it had ended)" : ""}`,
    );
    this.attach(entry, call, from);
    return true;
  }

  /** Cancel RPC: stops a running generation or drops a held one; false when there is none. */
  cancel(taskId: string): boolean {
    const entry = this.entries.get(taskId);
    if (!entry) return false;
    if (entry.settled) this.drop(taskId);
    else this.stop(entry, "cancel_rpc");
    return true;
  }

  /** Shutdown: every running generation stops, every held one is dropped. */
  closeAll(): void {
    for (const entry of [...this.entries.values()]) {
      if (entry.settled) this.drop(entry.taskId);
      else this.stop(entry, "shutdown");
    }
  }

  private attach(entry: Entry, call: SubmitCall, from: { tokens: number; results: number }): void {
    clearTimeout(entry.holdTimer);
    entry.holdTimer = undefined;
    entry.current = call;
    entry.record.attach(call, from);
    if (entry.settled) {
      // The whole record, terminal included, went to the call: nothing is left to hold.
      this.entries.delete(entry.taskId);
      return;
    }
    call.on("cancelled", () => {
      if (entry.current !== call) return;
      if (entry.detachable && !entry.stopping) {
        this.detach(entry);
      } else {
        entry.record.detach();
        entry.stop("client_cancelled");
      }
    });
  }

  private detach(entry: Entry): void {
    entry.record.detach();
    entry.current = undefined;
    entry.holdTimer = setTimeout(() => this.expire(entry), this.hold.holdMs);
    entry.holdTimer.unref();
    entry.log.info(
      { event: "generation_held", hold_ms: this.hold.holdMs, tokens_out: entry.record.tokensOut },
      `the call of task ${entry.taskId} broke after ${entry.record.tokensOut} tokens; holding the generation up to ${this.hold.holdMs} ms for core to resume it`,
    );
  }

  private settle(entry: Entry, terminal: Terminal, cause: StopCause | undefined): void {
    entry.settled = true;
    entry.record.finish(terminal);
    // Held on only for a core that may still come for it.
    const held = entry.current === undefined && entry.detachable && (cause === undefined || cause === "hold_full");
    if (!held && this.entries.get(entry.taskId) === entry) this.drop(entry.taskId);
  }

  private expire(entry: Entry): void {
    entry.holdTimer = undefined;
    if (this.entries.get(entry.taskId) !== entry || entry.current !== undefined) return;
    if (entry.settled) this.drop(entry.taskId);
    else this.stop(entry, "hold_expired");
  }

  private stop(entry: Entry, cause: StopCause): void {
    entry.stopping = true;
    entry.stop(cause);
  }

  private drop(taskId: string): void {
    const entry = this.entries.get(taskId);
    if (!entry) return;
    clearTimeout(entry.holdTimer);
    this.entries.delete(taskId);
  }
}
