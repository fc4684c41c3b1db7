import type { Logger } from "../../contracts/runtime/logger.js";
import type { StopCause } from "./generation-end.js";
import { GenerationRecord, type HoldLimits } from "./generation-record.js";
import type { SubmitCall, Terminal } from "./submit-stream.js";

export interface HoldOptions extends HoldLimits {
  /** How long a generation whose call broke is held for a Resume (running or ended) before it is given up. */
  holdMs: number;
}

export const DEFAULT_HOLD: HoldOptions = { maxEvents: 10_000, maxBytes: 16 * 1024 * 1024, holdMs: 60_000 };

/**
 * A generation that ended on its call this recently may have sent its last
 * events into a connection core's death had already cut, unnoticed yet: if
 * core turns out to be gone, it is held like one whose call broke.
 */
const RECENT_MS = 2_000;
const RECENT_MAX = 1_000;

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
  /** Detachable generations that ended on their call lately, oldest first, with when. */
  private readonly recent = new Map<string, { entry: Entry; at: number }>();
  /** Registration lost core's lease and has not got it back. */
  private coreAway = false;
  /** One timer for all of `recent`, running only while it holds something. */
  private sweep: NodeJS.Timeout | undefined;

  constructor(private readonly limits: HoldOptions = DEFAULT_HOLD) {}

  isRunning(taskId: string): boolean {
    const entry = this.entries.get(taskId);
    return entry !== undefined && !entry.settled;
  }

  /** Generations the adapter is still running, attached or held (what a drain waits for). */
  get runningCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (!e.settled) n++;
    return n;
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
      record: new GenerationRecord(this.limits, onStarted, () => stop("hold_full")),
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

  /** Core's lease is lost: what ended on its call lately is held, and so is what ends until core is back. */
  coreLost(): void {
    this.coreAway = true;
    const since = Date.now() - RECENT_MS;
    for (const [taskId, { entry, at }] of this.recent) if (at >= since && !this.entries.has(taskId)) this.hold(entry);
    this.recent.clear();
  }

  coreBack(): void {
    this.coreAway = false;
  }

  /** Cancel RPC: stops a running generation or drops a held one; false when there is none. */
  cancel(taskId: string): boolean {
    this.recent.delete(taskId);
    const entry = this.entries.get(taskId);
    if (!entry) return false;
    if (entry.settled) this.drop(taskId);
    else this.stop(entry, "cancel_rpc");
    return true;
  }

  /** Shutdown: every running generation stops, every held one is dropped. */
  closeAll(): void {
    this.recent.clear();
    clearInterval(this.sweep);
    this.sweep = undefined;
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
      // A call cancelled after its end was written has nothing left to hold (remember() covers a core that died then).
      if (entry.current !== call || entry.settled) return;
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
    this.hold(entry);
  }

  /** Keeps the generation (running, or ended) for a core that lost its call, until it resumes it or the hold runs out. */
  private hold(entry: Entry): void {
    entry.current = undefined;
    this.entries.set(entry.taskId, entry);
    entry.holdTimer = setTimeout(() => this.expire(entry), this.limits.holdMs);
    entry.holdTimer.unref();
    const tokens = entry.record.tokensOut;
    entry.log.info(
      { event: "generation_held", hold_ms: this.limits.holdMs, tokens_out: tokens, ended: entry.settled },
      `${entry.settled ? `task ${entry.taskId} ended as core went away` : `the call of task ${entry.taskId} broke`} after ${tokens} tokens; holding the generation up to ${this.limits.holdMs} ms for core to resume it`,
    );
  }

  private settle(entry: Entry, terminal: Terminal, cause: StopCause | undefined): void {
    entry.settled = true;
    const onCall = entry.current !== undefined;
    entry.record.finish(terminal);
    // Held on only for a core that may still come for it.
    const endedNormally = entry.detachable && (cause === undefined || cause === "hold_full");
    if (!onCall && endedNormally) return;
    if (this.entries.get(entry.taskId) === entry) this.drop(entry.taskId);
    if (onCall && endedNormally) {
      if (this.coreAway) this.hold(entry);
      else this.remember(entry);
    }
  }

  /** Its end went to its call: kept a moment in case that call died with core unnoticed. */
  private remember(entry: Entry): void {
    this.recent.set(entry.taskId, { entry, at: Date.now() });
    this.forgetOld();
    this.sweep ??= setInterval(() => this.forgetOld(), RECENT_MS);
    this.sweep.unref();
  }

  private forgetOld(): void {
    const since = Date.now() - RECENT_MS;
    for (const [taskId, { at }] of this.recent) {
      if (at >= since && this.recent.size <= RECENT_MAX) break;
      this.recent.delete(taskId);
    }
    if (this.recent.size === 0) {
      clearInterval(this.sweep);
      this.sweep = undefined;
    }
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
    this.recent.delete(taskId);
    const entry = this.entries.get(taskId);
    if (!entry) return;
    clearTimeout(entry.holdTimer);
    this.entries.delete(taskId);
  }
}
