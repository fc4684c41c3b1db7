import { EventEmitter } from "node:events";
import type { Logger } from "../../contracts/runtime/logger.js";
import { Replica, type ReplicaRegistration } from "./replica.js";

/**
 * Every sidecar currently registered, by replica id. A replica is here exactly
 * while its Register stream is open; re-registering under the same id
 * replaces the old entry (a sidecar that restarted).
 */
export class ReplicaRegistry extends EventEmitter {
  private readonly replicas = new Map<string, Replica>();

  constructor(private readonly logger: Logger) {
    super();
  }

  add(registration: ReplicaRegistration): Replica {
    const previous = this.replicas.get(registration.replicaId);
    if (previous) this.remove(previous, "replaced by a new registration");
    const replica = new Replica(registration, this.logger);
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
