import { Priority } from "../../contracts/gen/llama_orch/v1/common.js";
import type { PoolQueue } from "../queue/pool-queue.js";

/** What a full pool queue does with one more task. */
export type QueueFullPolicy = "reject" | "drop-lru" | "shed-low-priority";

export const QUEUE_FULL_POLICIES: readonly QueueFullPolicy[] = ["reject", "drop-lru", "shed-low-priority"];

export type FullQueueOutcome<T> =
  /** Make room by evicting this queued entry, then enqueue the new one. */
  | { action: "evict"; victimId: string; victim: T }
  /** The new task is refused. */
  | { action: "refuse" };

/**
 * Decides, for a full queue, who gives way. Pure: the caller evicts and
 * reports. `drop-lru` sacrifices the longest-waiting batch task for any
 * newcomer; `shed-low-priority` sheds the newest batch task, and only to
 * make room for interactive work; `reject` turns the newcomer away.
 */
export function onQueueFull<T>(queue: PoolQueue<T>, policy: QueueFullPolicy, newcomer: Priority): FullQueueOutcome<T> {
  if (policy === "reject") return { action: "refuse" };
  if (policy === "shed-low-priority" && newcomer !== Priority.PRIORITY_INTERACTIVE) return { action: "refuse" };
  const entry = policy === "drop-lru" ? queue.oldestOf(Priority.PRIORITY_BATCH) : queue.newestOf(Priority.PRIORITY_BATCH);
  if (!entry) return { action: "refuse" };
  return { action: "evict", victimId: entry[0], victim: entry[1] };
}
