// Refuses a download that cannot fit before a byte of it is written: a disk
// filled by a model half-downloaded breaks everything else on the host too.
import { statfs as fsStatfs } from "node:fs/promises";
import { formatBytes } from "./progress-display.js";
import { ProvisionError } from "./provision-error.js";

/** What fs.statfs returns that matters here; injectable so tests can play a full disk. */
export type StatFs = (dir: string) => Promise<{ bavail: number | bigint; bsize: number | bigint }>;

/** Bytes an unprivileged process may still write on the filesystem of `dir`, or undefined when the platform cannot say. */
export async function freeBytes(dir: string, statfs: StatFs = fsStatfs): Promise<number | undefined> {
  try {
    const s = await statfs(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}

/** Throws no_space when `neededBytes` more would not fit in `dir`. */
export async function ensureSpace(dir: string, neededBytes: number, what: string, statfs?: StatFs): Promise<void> {
  if (neededBytes <= 0) return;
  const free = await freeBytes(dir, statfs);
  if (free === undefined || free >= neededBytes) return;
  throw new ProvisionError(
    "no_space",
    `not enough disk space for ${what} in ${dir}: it needs ${formatBytes(neededBytes)} more and ${formatBytes(free)} are free; free some space or point --model-cache at a larger disk`,
    { retriable: false },
  );
}
