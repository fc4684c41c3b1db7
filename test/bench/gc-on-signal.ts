/**
 * Preloaded into a process the bench measures (`node --expose-gc --import
 * this`): SIGUSR2 runs a full garbage collection, so the resident set read
 * after it counts what the process keeps, not garbage it has yet to collect.
 */
const gc = (globalThis as { gc?: () => void }).gc;
if (gc) process.on("SIGUSR2", () => gc());
