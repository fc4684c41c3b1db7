/**
 * Waits `ms`, or less when `signal` aborts first. Resolves true when the full
 * time passed and false when aborted, so engine loops can `if (!await ...)`
 * instead of catching AbortErrors on their normal cancel path.
 */
export function waitOrAbort(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Yields one turn of the event loop (setImmediate), reporting whether `signal` aborted meanwhile. */
export function yieldOrAbort(signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => setImmediate(() => resolve(!signal.aborted)));
}

/** Resolves once `signal` aborts: what a stuck engine looks like from the outside. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}
