// The llama.cpp fake's slots: which slot a completion runs on, what each slot
// caches, and the slot action the adapter uses (erase). Follows
// ggml-org/llama.cpp tools/server/README.md:
//   - POST /completion `id_slot`: "Assign the completion task to an specific
//     slot. If is -1 the task will be assigned to a Idle slot. Default: -1".
//     server-context.cpp (process_single_task) defers a task whose slot is
//     processing until it is idle, and one whose id names no slot
//     (get_slot_by_id gives nullptr) is deferred the same way, for ever.
//   - POST /slots/{id_slot}?action=erase: "Erase the prompt cache of the
//     specified slot", answering {"id_slot": 0, "n_erased": 1745}. Every slot
//     action needs --slot-save-path, else 501 "This server does not support
//     slots action. Start it with `--slot-save-path`" (not_supported_error);
//     an id that is not a number or names no slot is 400 "Invalid slot ID",
//     an unknown action 400 "Invalid action"; the erase of a processing slot
//     waits until it is idle. save and restore are not faked (404).
//   - The final frame's `tokens_cached`: "Number of tokens from the prompt
//     which could be re-used from previous completion (n_past)": what the
//     slot holds after it, which erase then reports as n_erased.
// The slot table (FakeSlots) and the slot action's route (slotAction).

import type http from "node:http";
import type { FakeRequest } from "./fake-http.js";
import type { FakeLlamaCppBehaviour } from "./llamacpp-fake.js";
import { errorType, sendError, sendJson } from "./llamacpp-fake-bodies.js";

interface Waiter {
  slot: number;
  wake: () => void;
}

export class FakeSlots {
  private readonly busy = new Set<number>();
  private readonly cached = new Map<number, number>();
  private waiters: Waiter[] = [];

  constructor(private readonly total: () => number) {}

  /**
   * The slot a completion runs on. -1 (or none): the first idle slot, or the
   * last one when all are busy (the fake overlaps rather than queues, as it
   * always has). A slot id: that slot once it is idle; undefined when the
   * client left before.
   */
  async acquire(idSlot: number, gone: AbortSignal): Promise<number | undefined> {
    if (idSlot === -1) {
      let slot = 0;
      while (this.busy.has(slot) && slot < this.total() - 1) slot++;
      this.busy.add(slot);
      return slot;
    }
    // Everyone waiting for the slot wakes when it frees; the first to run takes it, the others wait again.
    do {
      if (!(await this.idle(idSlot, gone))) return undefined;
    } while (this.busy.has(idSlot));
    this.busy.add(idSlot);
    return idSlot;
  }

  /** The completion on `slot` ended (or its client left) with `cachedTokens` in the slot. */
  release(slot: number, cachedTokens: number): void {
    this.busy.delete(slot);
    this.cached.set(slot, cachedTokens);
    const ready = this.waiters.filter((w) => w.slot === slot);
    this.waiters = this.waiters.filter((w) => w.slot !== slot);
    for (const w of ready) w.wake();
  }

  isBusy(slot: number): boolean {
    return this.busy.has(slot);
  }

  busyCount(): number {
    return this.busy.size;
  }

  cachedTokens(slot: number): number {
    return this.cached.get(slot) ?? 0;
  }

  /** Drops `slot`'s cache once it is idle and says how many tokens it held; undefined when the client left first. */
  async erase(slot: number, gone: AbortSignal): Promise<number | undefined> {
    if (!(await this.idle(slot, gone))) return undefined;
    const erased = this.cached.get(slot) ?? 0;
    this.cached.set(slot, 0);
    return erased;
  }

  /**
   * Resolves true once `slot` is idle (perhaps only for a moment: whoever
   * woke first may have taken it), false if `gone` aborts first. A slot
   * that does not exist is never idle: only the client's leaving ends that wait.
   */
  private idle(slot: number, gone: AbortSignal): Promise<boolean> {
    const exists = Number.isInteger(slot) && slot >= 0 && slot < this.total();
    if (exists && !this.busy.has(slot)) return Promise.resolve(true);
    return new Promise((resolve) => {
      if (gone.aborted) return resolve(false);
      const waiter: Waiter = { slot, wake: () => resolve(true) };
      if (exists) this.waiters.push(waiter);
      gone.addEventListener(
        "abort",
        () => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(false);
        },
        { once: true },
      );
    });
  }
}

/** POST /slots/{id}?action=erase, refused as the server refuses; answered once the slot is idle. */
export async function slotAction(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  record: FakeRequest,
  b: FakeLlamaCppBehaviour,
  slotTable: FakeSlots,
): Promise<void> {
  const refuse = (status: number, message: string): void => {
    record.finished = true;
    sendError(res, status, message, errorType(status));
  };
  if (!b.slotSavePath) return refuse(501, "This server does not support slots action. Start it with `--slot-save-path`");
  const idText = record.path.slice("/slots/".length);
  if (!/^-?\d+$/.test(idText)) return refuse(400, "Invalid slot ID");
  const action = new URL(req.url ?? "/", "http://fake").searchParams.get("action");
  if (action === "save" || action === "restore") return refuse(404, "File Not Found");
  if (action !== "erase") return refuse(400, "Invalid action");
  const id = Number(idText);
  if (id < 0 || id >= b.totalSlots) return refuse(400, "Invalid slot ID");
  const gone = new AbortController();
  res.on("close", () => {
    gone.abort();
    if (!res.writableEnded) record.closedByClient = true;
  });
  const erased = await slotTable.erase(id, gone.signal);
  if (erased === undefined) return;
  record.finished = true;
  sendJson(res, 200, { id_slot: id, n_erased: erased });
}
