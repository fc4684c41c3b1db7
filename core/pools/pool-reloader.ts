import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import type { Replica } from "../registry/replica.js";
import type { ReplicaRegistry } from "../registry/replica-registry.js";
import type { Scheduler } from "../scheduler/scheduler.js";

/** How long one replica may take to load a model. */
const LOAD_TIMEOUT_MS = 10 * 60_000;

/**
 * Reloads a pool atomically: every replica loads the new model; the pool is
 * Ready again only when all have it. If any replica fails, the ones that
 * succeeded load the previous model back, and the pool is Ready on it again.
 */
export class PoolReloader {
  constructor(
    private readonly scheduler: Scheduler,
    private readonly registry: ReplicaRegistry,
    private readonly logger: Logger,
  ) {}

  /** Validates and starts a reload; the outcome shows in pool health (reload_state, model_ref, last_reload_error). */
  start(poolId: string, newModelRef: string): { previousModelRef: string } {
    const pool = this.scheduler.pool(poolId);
    if (pool.reloadState !== "idle") {
      throw OrchError.of(
        ErrorCode.ERROR_CODE_POOL_UNREADY,
        `pool ${poolId} is already ${pool.reloadState.replace("_", " ")}; wait for it to finish`,
        { retriable: true, retryAfterMs: 1_000 },
      );
    }
    const replicas = this.registry.inPool(poolId);
    if (replicas.length === 0)
      throw OrchError.of(ErrorCode.ERROR_CODE_POOL_UNAVAILABLE, `pool ${poolId} has no registered replicas to reload`);
    const previousModelRef = replicas[0]!.modelRef;
    this.scheduler.setReloadState(poolId, "reloading");
    this.logger.info(
      { event: "pool_reload", pool_id: poolId, model_ref: newModelRef, previous_model_ref: previousModelRef },
      `pool ${poolId} reloading ${previousModelRef} -> ${newModelRef}`,
    );
    void this.run(poolId, replicas, previousModelRef, newModelRef);
    return { previousModelRef };
  }

  private async run(poolId: string, replicas: Replica[], previous: string, next: string): Promise<void> {
    const results = await Promise.allSettled(replicas.map((r) => r.loadModel(next, LOAD_TIMEOUT_MS)));
    const failures = results.flatMap((r, i) => (r.status === "rejected" ? [`${replicas[i]!.id}: ${(r.reason as Error).message}`] : []));
    if (failures.length === 0) {
      this.scheduler.setReloadState(poolId, "idle", { succeeded: true });
      this.logger.info(
        { event: "pool_reloaded", pool_id: poolId, model_ref: next },
        `pool ${poolId} now serves ${next} on ${replicas.length} replicas`,
      );
      return;
    }
    const error = `reload to ${next} failed (${failures.join("; ")}); rolled back to ${previous}`;
    this.scheduler.setReloadState(poolId, "rolling_back", { error });
    const loaded = replicas.filter((_, i) => results[i]!.status === "fulfilled");
    const rollbacks = await Promise.allSettled(loaded.map((r) => r.loadModel(previous, LOAD_TIMEOUT_MS)));
    const stuck = rollbacks.flatMap((r, i) => (r.status === "rejected" ? [`${loaded[i]!.id}: ${(r.reason as Error).message}`] : []));
    const finalError = stuck.length === 0 ? error : `${error}; rollback failed on ${stuck.join("; ")}`;
    this.scheduler.setReloadState(poolId, "idle", { error: finalError });
    this.logger.warn({ event: "pool_reload_failed", pool_id: poolId, model_ref: next, error: finalError }, `pool ${poolId}: ${finalError}`);
  }
}
