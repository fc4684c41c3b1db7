// One downloader per file across the processes that share a cache (two
// sidecars on one host): a lock file created exclusively, its holder's pid
// inside. A lock whose holder is dead is taken over; the others wait.
import { open, readFile, rm, stat } from "node:fs/promises";
import { errorCode } from "../../contracts/runtime/atomic-file.js";
import { waitOrAbort } from "../abortable-wait.js";
import { abortError } from "./http-get.js";
import { processIsAlive } from "../../contracts/runtime/process-alive.js";

export interface LockOptions {
  signal: AbortSignal;
  /** How often a waiter looks again, default 200 ms. */
  pollMs?: number;
  /** Called on each look while another process holds the lock. */
  onWait?: () => void | Promise<void>;
}

/** A lock file that cannot be read yet is its creator's between open and write; this old, it is abandoned. */
const UNREADABLE_GRACE_MS = 10_000;
/** Breaking a stale lock takes milliseconds; a breaker's marker this old belongs to a breaker that died. */
const BREAKER_GRACE_MS = 10_000;

/** Locks held by this process, so a lock naming our own pid but not held here (a reused pid) counts as stale. */
const heldHere = new Set<string>();

/** Waits until this process holds the lock at `file`; resolves with its release. */
export async function acquireLock(file: string, options: LockOptions): Promise<() => Promise<void>> {
  const pollMs = options.pollMs ?? 200;
  const token = `${process.pid}\n`;
  for (;;) {
    if (options.signal.aborted) throw abortError();
    if (await tryCreate(file, token)) {
      heldHere.add(file);
      return async () => {
        heldHere.delete(file);
        // Remove only our own lock: never one a waiter took over after deciding ours was stale.
        if ((await readFile(file, "utf8").catch(() => undefined)) === token) await rm(file, { force: true });
      };
    }
    const seen = await readFile(file, "utf8").catch(() => undefined);
    if (seen === undefined) continue;
    if (await isStale(file, seen)) {
      // Another breaker at work: give it a moment rather than spin.
      if (!(await breakStale(file, seen)) && !(await waitOrAbort(Math.min(pollMs, 50), options.signal))) throw abortError();
      continue;
    }
    await options.onWait?.();
    if (!(await waitOrAbort(pollMs, options.signal))) throw abortError();
  }
}

async function tryCreate(file: string, token: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(file, "wx", 0o644);
  } catch (err) {
    if (errorCode(err) === "EEXIST") return false;
    throw err;
  }
  try {
    await handle.writeFile(token);
  } finally {
    await handle.close();
  }
  return true;
}

async function isStale(file: string, content: string): Promise<boolean> {
  const pid = Number(content.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0 || !content.endsWith("\n")) {
    const info = await stat(file).catch(() => undefined);
    return info !== undefined && Date.now() - info.mtimeMs > UNREADABLE_GRACE_MS;
  }
  if (pid === process.pid) return !heldHere.has(file);
  return !processIsAlive(pid);
}

/**
 * Removes a stale lock, if it still holds what was judged stale; false when
 * another process is breaking it. A marker
 * file created exclusively makes the check and the removal one step among
 * breakers, so one cannot remove the fresh lock another breaker just took.
 */
async function breakStale(file: string, seen: string): Promise<boolean> {
  const marker = `${file}.break`;
  if (!(await tryCreate(marker, `${process.pid}\n`))) {
    const info = await stat(marker).catch(() => undefined);
    if (info !== undefined && Date.now() - info.mtimeMs > BREAKER_GRACE_MS) await rm(marker, { force: true });
    return false;
  }
  try {
    if ((await readFile(file, "utf8").catch(() => undefined)) === seen) await rm(file, { force: true });
  } finally {
    await rm(marker, { force: true });
  }
  return true;
}
