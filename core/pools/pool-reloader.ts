import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { engines } from "../../contracts/enums.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import type { LoadDigests, LoadFailure } from "../catalog/load-digests.js";
import type { CoreMetrics } from "../metrics.js";
import { ModelLoadError, type Replica } from "../registry/replica.js";
import type { ReplicaRegistry } from "../registry/replica-registry.js";
import type { Scheduler } from "../scheduler/scheduler.js";

/** How long one replica may take to load a model. */
const LOAD_TIMEOUT_MS = 10 * 60_000;
/** Failed reloads remembered (the latest per model), so a stream of refs cannot grow the memory without bound. */
const REMEMBERED_FAILURES = 256;

export interface PoolReloaderDeps {
  scheduler: Scheduler;
  registry: ReplicaRegistry;
  /** The catalog's digest for each model loaded, and where a mismatch a replica found is recorded. */
  digests: LoadDigests;
  metrics: CoreMetrics;
  logger: Logger;
}

/**
 * Reloads a pool atomically: every replica loads the new model; the pool is
 * Ready again only when all have it. If any replica fails, the ones that
 * succeeded load the previous model back, and the pool is Ready on it again.
 * Each load is asked to match the catalog's digest of its model; a replica
 * that finds the bytes do not match fails the entry's verification, so its
 * tasks get UNTRUSTED_ARTIFACT.
 */
export class PoolReloader {
  /** Pools reloading now, and the model each is loading. */
  private readonly loading = new Map<string, string>();
  /** The latest failed reload onto each model: when, and what failed (auto-fetch does not start it again at once). */
  private readonly failures = new Map<string, { at: number; error: string }>();

  constructor(private readonly deps: PoolReloaderDeps) {}

  /** The pool loading `modelRef` now, if any. */
  poolLoading(modelRef: string): string | undefined {
    for (const [poolId, target] of this.loading) if (target === modelRef) return poolId;
    return undefined;
  }

  /** Why the latest reload onto `modelRef` failed, when that was less than `withinMs` before `now`. */
  recentFailure(modelRef: string, withinMs: number, now: number): { at: number; error: string } | undefined {
    const failure = this.failures.get(modelRef);
    return failure !== undefined && now - failure.at < withinMs ? failure : undefined;
  }

  /** Validates and starts a reload; the outcome shows in pool health (reload_state, model_ref, last_reload_error). */
  start(poolId: string, newModelRef: string): { previousModelRef: string } {
    const pool = this.deps.scheduler.pool(poolId);
    if (pool.reloadState !== "idle") {
      throw OrchError.of(
        ErrorCode.ERROR_CODE_POOL_UNREADY,
        `pool ${poolId} is already ${pool.reloadState.replace("_", " ")}; wait for it to finish`,
        { retriable: true, retryAfterMs: 1_000 },
      );
    }
    const replicas = this.deps.registry.inPool(poolId);
    if (replicas.length === 0)
      throw OrchError.of(ErrorCode.ERROR_CODE_POOL_UNAVAILABLE, `pool ${poolId} has no registered replicas to reload`);
    const previousModelRef = replicas[0]!.modelRef;
    this.deps.scheduler.setReloadState(poolId, "reloading");
    this.deps.logger.info(
      { event: "pool_reload", pool_id: poolId, model_ref: newModelRef, previous_model_ref: previousModelRef },
      `pool ${poolId} reloading ${previousModelRef} -> ${newModelRef}`,
    );
    this.loading.set(poolId, newModelRef);
    void this.run(poolId, replicas, previousModelRef, newModelRef).finally(() => this.loading.delete(poolId));
    return { previousModelRef };
  }

  private async run(poolId: string, replicas: Replica[], previous: string, next: string): Promise<void> {
    const expected = this.deps.digests.expectedFor(next);
    const results = await Promise.allSettled(replicas.map((r) => r.loadModel(next, LOAD_TIMEOUT_MS, expected)));
    const failures = results.flatMap((r, i) => (r.status === "rejected" ? [{ replica: replicas[i]!, failure: failureOf(r.reason) }] : []));
    if (failures.length === 0) {
      this.failures.delete(next);
      this.deps.scheduler.setReloadState(poolId, "idle", { succeeded: true });
      this.deps.logger.info(
        { event: "pool_reloaded", pool_id: poolId, model_ref: next },
        `pool ${poolId} now serves ${next} on ${replicas.length} replicas`,
      );
      return;
    }
    const untrusted = await this.recordMismatch(next, expected, failures);
    const error = `reload to ${next} failed (${failures.map((f) => `${f.replica.id}: ${f.failure.message}`).join("; ")})${untrusted}; rolled back to ${previous}`;
    this.deps.scheduler.setReloadState(poolId, "rolling_back", { error });
    const loaded = replicas.filter((_, i) => results[i]!.status === "fulfilled");
    const previousDigest = this.deps.digests.expectedFor(previous);
    const rollbacks = await Promise.allSettled(loaded.map((r) => r.loadModel(previous, LOAD_TIMEOUT_MS, previousDigest)));
    const stuck = rollbacks.flatMap((r, i) => (r.status === "rejected" ? [`${loaded[i]!.id}: ${(r.reason as Error).message}`] : []));
    const finalError = stuck.length === 0 ? error : `${error}; rollback failed on ${stuck.join("; ")}`;
    this.noteFailure(next, finalError);
    this.deps.scheduler.setReloadState(poolId, "idle", { error: finalError });
    this.deps.logger.warn(
      { event: "pool_reload_failed", pool_id: poolId, model_ref: next, error: finalError },
      `pool ${poolId}: ${finalError}`,
    );
  }

  private noteFailure(modelRef: string, error: string): void {
    this.failures.delete(modelRef);
    this.failures.set(modelRef, { at: Date.now(), error });
    if (this.failures.size > REMEMBERED_FAILURES) this.failures.delete(this.failures.keys().next().value!);
  }

  /**
   * A replica that found the model's bytes are not the catalog's digest fails
   * the catalog entry's verification (the first such replica's finding is
   * recorded); what to add to last_reload_error about it.
   */
  private async recordMismatch(
    modelRef: string,
    expected: string,
    failures: { replica: Replica; failure: LoadFailure }[],
  ): Promise<string> {
    for (const { replica, failure } of failures) {
      let entry;
      try {
        entry = await this.deps.digests.loadFailed(modelRef, expected, replica.id, failure);
      } catch (err) {
        this.deps.logger.error({ err, model_ref: modelRef }, `recording the digest mismatch of ${modelRef} in the catalog failed`);
        return "";
      }
      if (entry === undefined) continue;
      const engine = engines.name(replica.registration.engine);
      this.deps.metrics.catalogVerifications.inc({ result: "fail", reason: "digest_mismatch", engine });
      this.deps.logger.warn(
        { event: "catalog_verified", model_id: entry.id, result: "failed", reason: "digest_mismatch", replica_id: replica.id, engine },
        `catalog: ${entry.id} verification failed (digest_mismatch) while replica ${replica.id} loaded ${modelRef}; its tasks get UNTRUSTED_ARTIFACT`,
      );
      return `; catalog model ${entry.id} marked failed verification (digest mismatch), its tasks get UNTRUSTED_ARTIFACT`;
    }
    return "";
  }
}

function failureOf(reason: unknown): LoadFailure {
  if (reason instanceof ModelLoadError) return { message: reason.message, code: reason.code };
  return { message: reason instanceof Error ? reason.message : String(reason) };
}
