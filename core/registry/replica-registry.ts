import { EventEmitter } from "node:events";
import type { Dial } from "../../contracts/runtime/dial.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { afterAsking, claimStep } from "./replica-claim.js";
import { Replica, type ReplicaRegistration } from "./replica.js";

/** How long a holder of a replica id has to answer before a new registrant may take the id. */
const HOLDER_ANSWER_MS = 1_000;

/** A registration that did not get its replica id, and why (for the registrant). */
export class ReplicaIdTaken extends Error {
  constructor(replicaId: string, address: string) {
    super(
      `replica id ${replicaId} is held by a live sidecar at ${address}; a sidecar of another instance may take it only once that one's lease ends`,
    );
    this.name = "ReplicaIdTaken";
  }
}

/**
 * Every sidecar currently registered, by replica id. A replica is here exactly
 * while its Register stream is open. A registration owns its id: another
 * registrant gets it only when it is the same sidecar instance, or when the
 * holder no longer answers (replica-claim.ts decides).
 */
export class ReplicaRegistry extends EventEmitter {
  private readonly replicas = new Map<string, Replica>();
  /** Ids whose holder is being asked; a second contender meanwhile is refused, not queued. */
  private readonly contested = new Set<string>();

  constructor(
    private readonly logger: Logger,
    private readonly dial?: Dial,
  ) {
    super();
  }

  /**
   * Registers the sidecar, or throws ReplicaIdTaken. `stillWanted` is asked
   * after any wait: a registrant that went away meanwhile gets nothing.
   */
  async claim(registration: ReplicaRegistration, stillWanted: () => boolean): Promise<Replica | undefined> {
    const id = registration.replicaId;
    const holder = this.replicas.get(id);
    const step = claimStep(holder && { instanceId: holder.registration.instanceId, closed: holder.isClosed }, registration.instanceId);
    if (step.kind === "take") return this.add(registration);
    if (step.kind === "replace") return this.add(registration, step.reason);
    if (this.contested.has(id)) throw new ReplicaIdTaken(id, holder!.registration.address);
    this.contested.add(id);
    let answered: boolean;
    try {
      answered = await holder!.answers(HOLDER_ANSWER_MS);
    } finally {
      this.contested.delete(id);
    }
    if (!stillWanted()) return undefined;
    // The holder may have left (or been replaced) while it was asked: decide again on what holds the id now.
    if (this.replicas.get(id) !== holder) return this.claim(registration, stillWanted);
    const next = afterAsking(answered);
    if (next.kind === "refuse") {
      this.logger.warn(
        { event: "registration_refused", replica_id: id, address: registration.address, holder_address: holder!.registration.address },
        `registration of replica ${id} from ${registration.address} refused: the id is held by the live sidecar at ${holder!.registration.address}`,
      );
      throw new ReplicaIdTaken(id, holder!.registration.address);
    }
    return this.add(registration, next.kind === "replace" ? next.reason : undefined);
  }

  private add(registration: ReplicaRegistration, replacing?: string): Replica {
    const previous = this.replicas.get(registration.replicaId);
    if (previous) this.remove(previous, `replaced: ${replacing ?? "a new registration"}`);
    const replica = new Replica(registration, this.logger, this.dial);
    this.replicas.set(replica.id, replica);
    replica.on("change", () => this.emit("change", replica));
    replica.start();
    this.logger.info(
      { event: "replica_registered", pool_id: replica.poolId, replica_id: replica.id, address: registration.address },
      `replica ${replica.id} of pool ${replica.poolId} registered from ${registration.address}`,
    );
    this.emit("change", replica);
    return replica;
  }

  /** Removes this exact replica instance (a stale stream must not remove its successor). */
  remove(replica: Replica, reason: string): void {
    if (this.replicas.get(replica.id) !== replica) return;
    this.replicas.delete(replica.id);
    replica.close();
    this.logger.warn(
      { event: "replica_left", pool_id: replica.poolId, replica_id: replica.id, reason },
      `replica ${replica.id} of pool ${replica.poolId} left: ${reason}`,
    );
    this.emit("removed", replica);
    this.emit("change", replica);
  }

  get(replicaId: string): Replica | undefined {
    return this.replicas.get(replicaId);
  }

  all(): Replica[] {
    return [...this.replicas.values()];
  }

  inPool(poolId: string): Replica[] {
    return this.all().filter((r) => r.poolId === poolId);
  }

  closeAll(): void {
    for (const r of this.all()) this.remove(r, "core shutting down");
  }
}
