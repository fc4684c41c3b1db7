import type { ClientReadableStream } from "@grpc/grpc-js";
import type { Replica } from "../registry/replica.js";

/**
 * Stops a task's generation on its replica. Cancelling the Submit call is
 * not enough: core's Submits are detachable, so a call that ends leaves the
 * generation running, held for a core that lost it. The Cancel RPC says core
 * wants it stopped, and goes first: a sidecar told to stop does not hold the
 * generation when the call then ends.
 */
export function stopGeneration(taskId: string, call: ClientReadableStream<unknown> | undefined, replica: Replica | undefined): void {
  if (!call) return;
  if (!replica) {
    call.cancel();
    return;
  }
  replica.cancelGeneration(taskId, () => call.cancel());
}
