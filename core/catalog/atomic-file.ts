import { randomBytes } from "node:crypto";
import { open, readdir, rename, unlink } from "node:fs/promises";
import path from "node:path";

// Temp files are dot-prefixed siblings of the target: rename(2) is only atomic within one
// filesystem, and the dot keeps them out of casual directory listings.
const TEMP_SUFFIX = ".tmp";

/** A fresh, unique temp path beside `target` (exported so tests can simulate a crashed writer). */
export function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  return path.join(dir, `.${base}.${process.pid}.${randomBytes(6).toString("hex")}${TEMP_SUFFIX}`);
}

function isTempNameFor(target: string, name: string): boolean {
  const prefix = `.${path.basename(target)}.`;
  return name.startsWith(prefix) && name.endsWith(TEMP_SUFFIX) && name.length > prefix.length + TEMP_SUFFIX.length;
}

/**
 * Replaces `target` so that a crash at any point leaves either the old or the new content,
 * never a torn file: data is fsynced before the rename, and the directory after it so the
 * rename itself survives power loss.
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(target);
  const handle = await open(tmp, "wx", 0o644);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(path.dirname(target));
}

async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch (err) {
    // Some platforms/filesystems cannot fsync a directory; the rename has still happened.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EISDIR" && code !== "EINVAL" && code !== "EPERM" && code !== "ENOTSUP") throw err;
  } finally {
    await handle?.close();
  }
}

/**
 * Deletes temp files a crashed writer left beside `target`. Only safe while no other writer
 * targets the same file, i.e. at startup of its single owner. Returns how many were removed.
 */
export async function removeStaleTempFiles(target: string): Promise<number> {
  const dir = path.dirname(target);
  let removed = 0;
  for (const name of await readdir(dir)) {
    if (!isTempNameFor(target, name)) continue;
    try {
      await unlink(path.join(dir, name));
      removed++;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  return removed;
}
