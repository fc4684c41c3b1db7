import { randomBytes } from "node:crypto";
import { link, mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { processIsAlive } from "./process-alive.js";

/**
 * Crash-safe file writes for every durable store (catalog, artifacts, model cache): a
 * reader sees either no file (or the old one) or the whole new file, never a
 * torn one, and once a call returns the file survives power loss.
 */

const TEMP_SUFFIX = ".tmp";
/** A temp file this old is abandoned even if its writer's pid is alive again (pid reuse). */
const TEMP_GRACE_MS = 60_000;

export type PublishMode = "create" | "replace";

/**
 * Writes `data` to `file` through a temp file in the same directory (so the
 * final step is a same-filesystem link or rename). "create" never overwrites:
 * it returns false when the file already exists, so concurrent writers of the
 * same name (other processes included) agree on the first one.
 */
export async function publishFile(file: string, data: string | Uint8Array, mode: PublishMode): Promise<boolean> {
  const dir = path.dirname(file);
  const temp = tempPathFor(file);
  try {
    const handle = await open(temp, "wx", 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (mode === "replace") await rename(temp, file);
    else if (!(await linkNoClobber(temp, file))) return false;
    await fsyncDir(dir);
    return true;
  } finally {
    await rm(temp, { force: true });
  }
}

/** Replaces `target` so that a crash at any point leaves either the old or the new content. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  await publishFile(target, data, "replace");
}

/** A fresh, unique temp path beside `target`: a dot-prefixed sibling (rename is atomic only within one filesystem). */
export function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString("hex")}${TEMP_SUFFIX}`);
}

/**
 * Deletes the temp files a crashed writer left beside `target`. Only for the
 * single owner of `target`, at startup, when no other writer can be mid-write.
 */
export async function removeStaleTempFiles(target: string): Promise<number> {
  const dir = path.dirname(target);
  const prefix = `.${path.basename(target)}.`;
  let removed = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(prefix) || !isTempFileName(name)) continue;
    await rm(path.join(dir, name), { force: true });
    removed++;
  }
  return removed;
}

/** Creates `dir` (and parents) and makes its directory entry durable when it is new. */
export async function ensureDir(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true });
  if (created !== undefined) await fsyncDir(path.dirname(dir));
}

export function isTempFileName(name: string): boolean {
  return name.startsWith(".") && name.endsWith(TEMP_SUFFIX);
}

/**
 * Removes temp files left by crashed writers from the given directories. A
 * temp file whose writer is still running (another process sharing the root)
 * is left alone, because removing it would fail that writer's publish.
 * Returns how many were removed.
 */
export async function sweepTempFiles(dirs: string[], now = Date.now()): Promise<number> {
  let removed = 0;
  for (const dir of dirs) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!isTempFileName(name)) continue;
      const file = path.join(dir, name);
      const info = await stat(file).catch(() => undefined);
      if (info === undefined || !info.isFile()) continue;
      if (now - info.mtimeMs < TEMP_GRACE_MS && writerMayBeAlive(name)) continue;
      await rm(file, { force: true });
      removed++;
    }
  }
  return removed;
}

async function linkNoClobber(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (err) {
    if (errorCode(err) === "EEXIST") return false;
    if (!["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"].includes(errorCode(err) ?? "")) throw err;
  }
  // No hard links on this filesystem: check-then-rename narrows, but cannot close, the race.
  if (
    await stat(to).then(
      () => true,
      () => false,
    )
  )
    return false;
  await rename(from, to);
  return true;
}

function writerMayBeAlive(tempName: string): boolean {
  const pid = Number(/\.(\d+)\.[0-9a-f]+\.tmp$/.exec(tempName)?.[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return true;
  return processIsAlive(pid);
}

/** Makes a directory's entries (a rename, a new file) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch (err) {
    // Some platforms and filesystems cannot fsync a directory; the rename is still atomic there.
    if (!["EISDIR", "EINVAL", "EPERM", "EBADF"].includes(errorCode(err) ?? "")) throw err;
  } finally {
    await handle?.close();
  }
}

export function errorCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string" ? err.code : undefined;
}
