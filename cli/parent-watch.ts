// Every process `llorch up` starts (and every one a test or the bench starts
// through process-launcher.ts) is tied to its parent by an IPC channel. The
// kernel closes the channel when the parent dies, however it dies (SIGKILL
// included), and Node emits "disconnect" at once: the child then stops as it
// would on SIGTERM instead of running on, orphaned, holding its ports.

/** Runs `gone` once the process that started this one is gone; never for a process started without the channel. */
export function onParentGone(gone: () => void): void {
  // process.send exists exactly when the process was started with the channel; process.channel is
  // null once the channel closed, which happens before this runs when the parent died during our startup.
  if (typeof process.send !== "function") return;
  // The channel is only a signal: it must not keep this process alive on its own.
  process.channel?.unref();
  if (!process.connected) {
    gone();
    return;
  }
  process.once("disconnect", gone);
}
