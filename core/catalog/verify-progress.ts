import type { CatalogModel } from "../../contracts/gen/llama_orch/v1/catalog.js";
import type { LoadProgress } from "../../contracts/gen/llama_orch/v1/common.js";

/**
 * How far each running catalog verification has got. Held here, in memory,
 * and laid over the entries as they are read: a progress report is one per
 * chunk hashed, which the durable index (an fsynced file) must not see.
 */
export class VerifyProgress {
  private readonly running = new Map<string, LoadProgress>();

  report(modelId: string, progress: LoadProgress): void {
    this.running.set(modelId, progress);
  }

  /** The run ended (its outcome is in the store now). */
  ended(modelId: string): void {
    this.running.delete(modelId);
  }

  /** The entry as it reads while its verification runs: the pending verification with its progress. */
  overlay(entry: CatalogModel): CatalogModel {
    const progress = this.running.get(entry.id);
    if (progress === undefined || entry.verification === undefined) return entry;
    return { ...entry, verification: { ...entry.verification, progress } };
  }
}
