// Callers in one process asking for the same model share one provisioning:
// each hears its progress, each may give up on its own (its signal), and the
// work itself stops only when every caller has given up.
import { abortError } from "./http-get.js";
import { fanOut, type ProgressListener } from "./progress.js";

export interface FlightCaller {
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

interface Flight<T> {
  promise: Promise<T>;
  listeners: Set<ProgressListener>;
  /** Callers still waiting that could still leave; one without a signal never leaves. */
  waiting: number;
  pinned: boolean;
  /** Stops the work and lets the next caller start afresh rather than join a flight that is ending. */
  abandon(): void;
}

export class SingleFlight<T> {
  private readonly flights = new Map<string, Flight<T>>();

  /** Joins the flight for `key`, starting it with `work` when there is none. */
  join(key: string, work: (signal: AbortSignal, progress: ProgressListener) => Promise<T>, caller: FlightCaller): Promise<T> {
    let flight = this.flights.get(key);
    // A caller that has already given up neither starts work nor counts as waiting for it.
    if (caller.signal?.aborted) return Promise.reject(abortError());
    if (flight === undefined) {
      const controller = new AbortController();
      const listeners = new Set<ProgressListener>();
      const forget = (): void => {
        if (this.flights.get(key) === started) this.flights.delete(key);
      };
      const abandon = (): void => {
        forget();
        controller.abort();
      };
      const started: Flight<T> = { promise: Promise.resolve(undefined as T), listeners, waiting: 0, pinned: false, abandon };
      started.promise = work(controller.signal, fanOut(listeners)).finally(forget);
      this.flights.set(key, started);
      flight = started;
    }
    return attach(flight, caller);
  }

  /** How many flights are running (for tests and metrics). */
  get size(): number {
    return this.flights.size;
  }
}

function attach<T>(flight: Flight<T>, caller: FlightCaller): Promise<T> {
  const { signal, onProgress } = caller;
  if (onProgress !== undefined) flight.listeners.add(onProgress);
  const stopListening = (): void => {
    if (onProgress !== undefined) flight.listeners.delete(onProgress);
  };
  if (signal === undefined) {
    flight.pinned = true;
    return flight.promise.finally(stopListening);
  }
  flight.waiting++;
  return new Promise<T>((resolve, reject) => {
    const leave = (): void => {
      stopListening();
      flight.waiting--;
      if (flight.waiting === 0 && !flight.pinned) flight.abandon();
      reject(abortError());
    };
    signal.addEventListener("abort", leave, { once: true });
    flight.promise.then(
      (value) => {
        signal.removeEventListener("abort", leave);
        stopListening();
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", leave);
        stopListening();
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
