// Progress of one provisioning, reported to whoever listens (pool health, a
// log, a terminal bar) at a bounded rate: a download delivers thousands of
// chunks a second, a listener wants a few updates.

export type ProvisionPhase = "resolving" | "downloading" | "verifying" | "done";

export interface ProvisionProgress {
  phase: ProvisionPhase;
  /** Bytes present so far, a resumed download's earlier bytes included; for a repository, all its files'. */
  bytesDone: number;
  /** Undefined until known (before the first answer, or a server that does not say). */
  bytesTotal: number | undefined;
  /** Over the last few seconds, bytes received by this process only. */
  bytesPerSecond: number;
  /** The file being worked on: a path in the repository, or a URL's path. */
  file: string | undefined;
}

export type ProgressListener = (progress: ProvisionProgress) => void;

const RATE_WINDOW_MS = 3_000;

/**
 * Holds the latest progress and passes it on: a change of phase or file at
 * once, byte counts at most every `intervalMs`, and always the last word
 * ("done"). The clock is injectable for tests.
 */
export class ProgressReporter {
  private current: ProvisionProgress = { phase: "resolving", bytesDone: 0, bytesTotal: undefined, bytesPerSecond: 0, file: undefined };
  private lastEmitAt = Number.NEGATIVE_INFINITY;
  private lastEmitted: ProvisionProgress | undefined;
  private readonly samples: { at: number; received: number }[] = [];
  private received = 0;

  constructor(
    private readonly listener: ProgressListener,
    private readonly intervalMs = 250,
    private readonly now: () => number = Date.now,
  ) {}

  get latest(): ProvisionProgress {
    return this.current;
  }

  /** A new phase (or file): reported at once. */
  phase(phase: ProvisionPhase, fields: Partial<Omit<ProvisionProgress, "phase" | "bytesPerSecond">> = {}): void {
    this.current = { ...this.current, ...fields, phase };
    this.emit(true);
  }

  /** Bytes on disk for the work in hand; `receivedNow` of them just arrived over the network. */
  bytes(bytesDone: number, receivedNow: number, bytesTotal?: number): void {
    this.received += receivedNow;
    this.current = { ...this.current, bytesDone, bytesTotal: bytesTotal ?? this.current.bytesTotal };
    this.emit(false);
  }

  private emit(force: boolean): void {
    const at = this.now();
    this.samples.push({ at, received: this.received });
    while (this.samples.length > 2 && this.samples[0]!.at < at - RATE_WINDOW_MS) this.samples.shift();
    if (!force && at - this.lastEmitAt < this.intervalMs) return;
    const first = this.samples[0]!;
    const seconds = (at - first.at) / 1000;
    const rate = seconds > 0 ? (this.received - first.received) / seconds : 0;
    this.current = { ...this.current, bytesPerSecond: Math.round(rate) };
    const last = this.lastEmitted;
    if (
      last !== undefined &&
      last.phase === this.current.phase &&
      last.file === this.current.file &&
      last.bytesDone === this.current.bytesDone &&
      last.bytesTotal === this.current.bytesTotal
    ) {
      return;
    }
    this.lastEmitAt = at;
    this.lastEmitted = this.current;
    this.listener(this.current);
  }
}

/** One listener that calls each of `listeners`; one that throws does not stop the others or the download. */
export function fanOut(listeners: Iterable<ProgressListener>): ProgressListener {
  return (progress) => {
    for (const listener of listeners) {
      try {
        listener(progress);
      } catch {
        // A display's bug must not fail the download it displays.
      }
    }
  };
}
