import { open, readFile, rm, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { ensureDir, errorCode, removeStaleTempFiles, writeFileAtomic } from "../../contracts/runtime/atomic-file.js";
import { processIsAlive } from "../../contracts/runtime/process-alive.js";

const JOURNAL_NAME = "tasks.journal";

/**
 * The journal's file on disk and the lock that makes its directory one
 * core's: appends are one write and one fsync each, and a rewrite replaces
 * the whole file atomically (temp file, fsync, rename, fsync of the
 * directory), so a crash leaves either the old file or the new one. Its one
 * caller serializes the calls.
 */
export class JournalFile {
  private constructor(
    readonly path: string,
    private readonly lockPath: string,
    private handle: FileHandle,
  ) {}

  /** Takes the directory's lock and reads what the last run left (empty for a new journal). */
  static async open(dir: string): Promise<{ file: JournalFile; text: string }> {
    await ensureDir(dir);
    const file = path.join(dir, JOURNAL_NAME);
    const lockPath = `${file}.lock`;
    await takeLock(lockPath);
    try {
      await removeStaleTempFiles(file);
      const text = await readFile(file, "utf8").catch((err: unknown) => {
        if (errorCode(err) === "ENOENT") return "";
        throw err;
      });
      const handle = await open(file, "a");
      return { file: new JournalFile(file, lockPath, handle), text };
    } catch (err) {
      await rm(lockPath, { force: true });
      throw err;
    }
  }

  /** Appends `data` and returns once it is on disk. */
  async append(data: string): Promise<void> {
    await this.handle.write(data);
    await this.handle.datasync();
  }

  /** Replaces the whole file with `data`, atomically and durably, and appends to the new file from then on. */
  async replace(data: string): Promise<void> {
    await writeFileAtomic(this.path, data);
    const old = this.handle;
    this.handle = await open(this.path, "a");
    await old.close();
  }

  async close(): Promise<void> {
    await this.handle.close();
    await rm(this.lockPath, { force: true });
  }
}

/**
 * A lock file naming the owner's pid. Two cores appending to one journal
 * would each replay the other's tasks after a restart, so a live owner
 * refuses the second; a dead owner's lock (core was killed) is taken over.
 */
async function takeLock(lockPath: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockPath, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return;
    } catch (err) {
      if (errorCode(err) !== "EEXIST") throw err;
    }
    const owner = Number((await readFile(lockPath, "utf8").catch(() => "")).trim());
    if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && processIsAlive(owner)) {
      throw new Error(`the task journal in ${path.dirname(lockPath)} is in use by process ${owner}; give this core its own --journal-root`);
    }
    await rm(lockPath, { force: true });
  }
  throw new Error(`cannot take the task journal lock ${lockPath}`);
}
