/** What core knows of the registration that holds a replica id now. */
export interface Holder {
  instanceId: string;
  closed: boolean;
}

/**
 * What to do with a registration for a replica id (pure): take a free id,
 * let the same sidecar instance take its own id back (its old stream is one
 * core has not yet seen end), and otherwise ask whether the holder still
 * answers before anyone may displace it.
 */
export type ClaimStep = { kind: "take" } | { kind: "replace"; reason: string } | { kind: "ask-holder" };

export function claimStep(holder: Holder | undefined, instanceId: string): ClaimStep {
  if (!holder || holder.closed) return { kind: "take" };
  if (instanceId !== "" && holder.instanceId === instanceId) return { kind: "replace", reason: "the same sidecar registered again" };
  return { kind: "ask-holder" };
}

/** The answer once the holder was asked: a holder that answers keeps its id. */
export function afterAsking(holderAnswered: boolean): ClaimStep | { kind: "refuse" } {
  return holderAnswered ? { kind: "refuse" } : { kind: "replace", reason: "its sidecar stopped answering; a new one took the id" };
}
