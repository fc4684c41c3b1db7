// Files the provisioner uses where they are, never copied: file: refs and
// relative paths, and files already in the Hugging Face hub's own cache.
// Their sha256 is computed once and remembered in the model cache's index
// while the file keeps its size and modification time.
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { errorCode } from "../../contracts/runtime/atomic-file.js";
import { sha256OfFile } from "./file-hash.js";
import type { ModelCache, CachedFile } from "./model-cache.js";
import { ProvisionError } from "./provision-error.js";

const COMMIT = /^[0-9a-f]{40}$/;

/** The sha256 and size of `file`, from the index when the file has not changed since it was last hashed. */
export async function hashedFile(
  cache: ModelCache,
  file: string,
  onBytes?: (done: number) => void,
): Promise<{ sha256: string; sizeBytes: number }> {
  const real = await realpath(file);
  const info = await stat(real);
  const key = `hash:${real}`;
  const memo = await cache.readEntry("hash", key).catch(() => undefined);
  if (memo !== undefined && memo.sizeBytes === info.size && memo.mtimeMs === info.mtimeMs)
    return { sha256: memo.sha256, sizeBytes: memo.sizeBytes };
  const sha256 = await sha256OfFile(real, onBytes);
  // The memo only saves time: a cache that cannot be written must not stop a local model from loading.
  await cache.writeEntry({ kind: "hash", key, sizeBytes: info.size, mtimeMs: info.mtimeMs, sha256 }).catch(() => undefined);
  return { sha256, sizeBytes: info.size };
}

export type LocalModel =
  { kind: "file"; path: string; sizeBytes: number } | { kind: "directory"; path: string; files: { path: string; sizeBytes: number }[] };

/** What a local path is, or not_found; every regular file of a directory, symlinks followed. */
export async function localModel(absolute: string): Promise<LocalModel> {
  const info = await stat(absolute).catch((err: unknown) => {
    if (errorCode(err) === "ENOENT" || errorCode(err) === "ENOTDIR") throw new ProvisionError("not_found", `${absolute} does not exist`);
    throw new ProvisionError("io", `cannot read ${absolute}: ${errorCode(err) ?? String(err)}`);
  });
  if (info.isFile()) return { kind: "file", path: absolute, sizeBytes: info.size };
  if (!info.isDirectory()) throw new ProvisionError("not_found", `${absolute} is neither a file nor a directory`);
  const files: { path: string; sizeBytes: number }[] = [];
  await walk(absolute, "", files, new Set([await realpath(absolute)]));
  if (files.length === 0) throw new ProvisionError("not_found", `${absolute} is an empty directory`);
  return { kind: "directory", path: absolute, files };
}

async function walk(root: string, rel: string, out: { path: string; sizeBytes: number }[], seen: Set<string>): Promise<void> {
  for (const name of (await readdir(path.join(root, rel))).sort()) {
    const relPath = rel === "" ? name : `${rel}/${name}`;
    const full = path.join(root, relPath);
    const info = await stat(full).catch(() => undefined);
    if (info?.isFile()) out.push({ path: relPath, sizeBytes: info.size });
    if (!info?.isDirectory()) continue;
    // A symlinked directory that leads back up would never end.
    const real = await realpath(full);
    if (seen.has(real)) continue;
    seen.add(real);
    await walk(root, relPath, out, seen);
  }
}

export interface HubCacheHit {
  path: string;
  /** The name of the blob the snapshot entry links to: the LFS sha256 for LFS files, as the hub's clients store them. */
  blobName: string | undefined;
}

/**
 * A file already in the hub's cache (`models--{org}--{repo}/snapshots/{commit}/{path}`,
 * the commit read from `refs/{revision}` unless the revision is one), or undefined.
 */
export async function findInHubCache(
  hubCacheDir: string,
  repoId: string,
  revision: string,
  file: string,
): Promise<HubCacheHit | undefined> {
  const repoDir = path.join(hubCacheDir, `models--${repoId.replace("/", "--")}`);
  const commit = COMMIT.test(revision) ? revision : (await readFile(path.join(repoDir, "refs", revision), "utf8").catch(() => "")).trim();
  if (!COMMIT.test(commit)) return undefined;
  const entry = path.join(repoDir, "snapshots", commit, ...file.split("/"));
  const info = await stat(entry).catch(() => undefined);
  if (info === undefined || !info.isFile()) return undefined;
  const real = await realpath(entry).catch(() => entry);
  const blobName =
    path.dirname(real) === path.join(await realpath(repoDir).catch(() => repoDir), "blobs") ? path.basename(real) : undefined;
  return { path: entry, blobName };
}

/** Files of a directory with their sha256, hashed (or recalled) one by one. */
export async function hashedFiles(
  cache: ModelCache,
  dir: string,
  files: { path: string }[],
  onFile: (file: string, done: number) => void,
): Promise<CachedFile[]> {
  const out: CachedFile[] = [];
  for (const f of files) {
    const { sha256, sizeBytes } = await hashedFile(cache, path.join(dir, ...f.path.split("/")), (done) => onFile(f.path, done));
    out.push({ path: f.path, sha256, sizeBytes });
  }
  return out;
}
