// The model cache on disk, shared by every sidecar of a host:
//
//   <root>/blobs/<sha256>                      verified bytes, named by their sha256
//   <root>/snapshots/hf/<org>--<repo>/<commit>/<path>   symlinks to blobs, laid out as in the repo
//   <root>/snapshots/url/<id>/<file name>      the same for https:// files
//   <root>/index/<id>.json                     one entry per ref (and per hashed local file)
//   <root>/partial/<id>.part, <id>.json        a download in progress and what it is of
//   <root>/locks/<id>.lock                     the pid of the process downloading <id>
//
// <id> is a hash of the entry's key (the resolve URL, the https URL, …).
// An entry is one small file written atomically, so processes sharing the
// cache never lose each other's updates and a reader never sees a torn one.
import { readlink, rename, rm, stat, symlink } from "node:fs/promises";
import path from "node:path";
import { indexEntryId, indexEntryPath, INDEX_ENTRY_VERSION, readIndexEntry, type IndexEntry } from "../../contracts/model-cache.js";
import { ensureDir, fsyncDir, sweepTempFiles, tempPathFor, writeFileAtomic } from "../../contracts/runtime/atomic-file.js";

// The index's entries and names are shared with core, which reads them (contracts/model-cache.ts).
export type { CachedFile, IndexEntry } from "../../contracts/model-cache.js";

export class ModelCache {
  private swept = false;

  constructor(readonly root: string) {}

  static idOf(key: string): string {
    return indexEntryId(key);
  }

  blobPath(sha256: string): string {
    return path.join(this.root, "blobs", sha256);
  }

  partPath(key: string): string {
    return path.join(this.root, "partial", `${ModelCache.idOf(key)}.part`);
  }

  partMetaPath(key: string): string {
    return path.join(this.root, "partial", `${ModelCache.idOf(key)}.json`);
  }

  lockPath(key: string): string {
    return path.join(this.root, "locks", `${ModelCache.idOf(key)}.lock`);
  }

  hubSnapshotDir(repoId: string, commit: string): string {
    return path.join(this.root, "snapshots", "hf", repoId.replace("/", "--"), commit);
  }

  urlSnapshotDir(key: string): string {
    return path.join(this.root, "snapshots", "url", ModelCache.idOf(key));
  }

  /** Creates the layout and removes temp files that crashed writers left in the index (live writers' are kept). */
  async open(): Promise<void> {
    for (const dir of ["blobs", "snapshots", "index", "partial", "locks"]) await ensureDir(path.join(this.root, dir));
    if (this.swept) return;
    this.swept = true;
    await sweepTempFiles([path.join(this.root, "index"), path.join(this.root, "partial")]);
  }

  readEntry<K extends IndexEntry["kind"]>(kind: K, key: string): Promise<Extract<IndexEntry, { kind: K }> | undefined> {
    return readIndexEntry(this.root, kind, key);
  }

  async writeEntry(entry: IndexEntry): Promise<void> {
    await writeFileAtomic(this.entryPath(entry.key), `${JSON.stringify({ version: INDEX_ENTRY_VERSION, entry }, null, 2)}\n`);
  }

  async deleteEntry(key: string): Promise<void> {
    await rm(this.entryPath(key), { force: true });
  }

  /** Whether the blob is there with the size it was stored with (its bytes were checked when stored). */
  async hasBlob(sha256: string, sizeBytes: number): Promise<boolean> {
    const info = await stat(this.blobPath(sha256)).catch(() => undefined);
    return info !== undefined && info.isFile() && info.size === sizeBytes;
  }

  /** Moves a verified download into the blob store (same filesystem: an atomic rename) and makes it durable. */
  async publishBlob(partPath: string, sha256: string): Promise<string> {
    const blob = this.blobPath(sha256);
    await rename(partPath, blob);
    await fsyncDir(path.dirname(blob));
    return blob;
  }

  /**
   * Makes `link` a symlink to `target` (relative when inside the cache, so the
   * cache can move), replacing whatever was there atomically.
   */
  async link(link: string, target: string): Promise<void> {
    const dir = path.dirname(link);
    await ensureDir(dir);
    const inside = !path.relative(this.root, target).startsWith("..");
    const wanted = inside ? path.relative(dir, target) : target;
    if ((await readlink(link).catch(() => undefined)) === wanted) return;
    const temp = tempPathFor(link);
    await symlink(wanted, temp);
    try {
      await rename(temp, link);
    } finally {
      await rm(temp, { force: true });
    }
    await fsyncDir(dir);
  }

  relative(p: string): string {
    return path.relative(this.root, p);
  }

  absolute(p: string): string {
    return path.join(this.root, p);
  }

  private entryPath(key: string): string {
    return indexEntryPath(this.root, key);
  }
}
