import type { ServerWritableStream } from "@grpc/grpc-js";

/**
 * Serves a "current value at once, then every change" stream (WatchHealth,
 * WatchProps). Only the latest value matters to a watcher, so when the
 * client reads slowly the changes that pile up are coalesced into one
 * message on drain instead of buffering every intermediate state.
 *
 * Returns a function that ends the stream (used at shutdown); the stream
 * also cleans up by itself when the client cancels. `onClosed` runs once
 * either way, so the owner can forget the stream.
 */
export function serveWatch<Req, Res>(
  call: ServerWritableStream<Req, Res>,
  snapshot: () => Res,
  subscribe: (onChange: () => void) => () => void,
  onClosed: () => void,
): () => void {
  if (call.cancelled) {
    queueMicrotask(onClosed);
    return () => {};
  }
  let waitingForDrain = false;
  let changedMeanwhile = false;
  let open = true;

  const send = (): void => {
    if (!open) return;
    if (waitingForDrain) {
      changedMeanwhile = true;
      return;
    }
    if (!call.write(snapshot())) {
      waitingForDrain = true;
      call.once("drain", () => {
        waitingForDrain = false;
        if (changedMeanwhile) {
          changedMeanwhile = false;
          send();
        }
      });
    }
  };

  const unsubscribe = subscribe(send);
  const close = (): void => {
    if (!open) return;
    open = false;
    unsubscribe();
    onClosed();
  };
  call.on("cancelled", close);
  call.on("error", close);
  send();

  return () => {
    if (!open) return;
    close();
    call.end();
  };
}
