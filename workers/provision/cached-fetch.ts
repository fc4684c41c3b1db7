// One remote file into the model cache, once: the index first (no request),
// then, holding the file's lock (other processes wait), the index again, a
// blob with the expected digest already there, and only then the download.
import { stat } from "node:fs/promises";
import { acquireLock } from "./download-lock.js";
import { download, type DownloadSpec } from "./download.js";
import type { ProvisionedModel, Run } from "./provision-types.js";

export interface FileFetch extends DownloadSpec {
  /** The ref as shown to people, for the index. */
  source: string;
  /** Where the file's link goes, given the commit the hub named (if any). */
  linkPath(commit: string | undefined): string;
  /** For a repository's files: bytes of the files before this one, and of all. */
  progressBase?: number;
  progressTotal?: number;
}

export interface FetchedFile {
  /** The link in the cache's snapshots. */
  path: string;
  sha256: string;
  sizeBytes: number;
  verified: boolean;
  commit?: string;
  fromCache: boolean;
}

export async function fetchFile(run: Run, f: FileFetch): Promise<FetchedFile> {
  const hit = await cachedFile(run, f);
  if (hit !== undefined) return hit;
  const release = await acquireLock(run.cache.lockPath(f.key), {
    signal: run.signal,
    pollMs: run.lockPollMs,
    onWait: () => reportOthersDownload(run, f),
  });
  try {
    const again = await cachedFile(run, f);
    if (again !== undefined) return again;
    const known = await knownBlob(run, f);
    if (known !== undefined) return await record(run, f, { blob: run.cache.blobPath(known.sha256), ...known, verified: true }, true);
    const base = f.progressBase ?? 0;
    run.reporter.phase("downloading", { file: f.file, bytesDone: base, bytesTotal: f.progressTotal ?? f.expectedSizeBytes });
    const got = await download(f, {
      cache: run.cache,
      http: run.http,
      signal: run.signal,
      retries: run.retries,
      retryBaseDelayMs: run.retryBaseDelayMs,
      statfs: run.statfs,
      onBytes: (done, received, total) => run.reporter.bytes(base + done, received, f.progressTotal ?? total),
      onVerifying: () => run.reporter.phase("verifying", { file: f.file }),
    });
    return await record(run, f, got, false);
  } finally {
    await release();
  }
}

/** The index's entry for the file when its blob is still there (and has the expected digest, if one is given). */
export async function cachedFile(run: Run, f: FileFetch): Promise<FetchedFile | undefined> {
  const entry = await run.cache.readEntry("file", f.key);
  if (entry === undefined) return undefined;
  if (f.expectedSha256 !== undefined && entry.sha256 !== f.expectedSha256) return undefined;
  if (f.expectedSizeBytes !== undefined && entry.sizeBytes !== f.expectedSizeBytes) return undefined;
  if (!(await run.cache.hasBlob(entry.sha256, entry.sizeBytes))) return undefined;
  const link = f.linkPath(entry.commit);
  await run.cache.link(link, run.cache.blobPath(entry.sha256));
  if (run.cache.relative(link) !== entry.link) await run.cache.writeEntry({ ...entry, link: run.cache.relative(link) });
  const verified = entry.verified || f.expectedSha256 === entry.sha256;
  return {
    path: link,
    sha256: entry.sha256,
    sizeBytes: entry.sizeBytes,
    verified,
    fromCache: true,
    ...(entry.commit === undefined ? {} : { commit: entry.commit }),
  };
}

/** A blob with the expected sha256 stored for another ref (another revision with the same file): no download needed. */
async function knownBlob(run: Run, f: FileFetch): Promise<{ sha256: string; sizeBytes: number } | undefined> {
  if (f.expectedSha256 === undefined) return undefined;
  const info = await stat(run.cache.blobPath(f.expectedSha256)).catch(() => undefined);
  if (info === undefined || !info.isFile()) return undefined;
  if (f.expectedSizeBytes !== undefined && info.size !== f.expectedSizeBytes) return undefined;
  return { sha256: f.expectedSha256, sizeBytes: info.size };
}

async function record(
  run: Run,
  f: FileFetch,
  got: { blob: string; sha256: string; sizeBytes: number; verified: boolean; commit?: string },
  fromCache: boolean,
): Promise<FetchedFile> {
  const link = f.linkPath(got.commit);
  await run.cache.link(link, got.blob);
  await run.cache.writeEntry({
    kind: "file",
    key: f.key,
    source: f.source,
    ...(got.commit === undefined ? {} : { commit: got.commit }),
    sha256: got.sha256,
    sizeBytes: got.sizeBytes,
    verified: got.verified,
    link: run.cache.relative(link),
    fetchedAt: new Date().toISOString(),
  });
  return {
    path: link,
    sha256: got.sha256,
    sizeBytes: got.sizeBytes,
    verified: got.verified,
    fromCache,
    ...(got.commit === undefined ? {} : { commit: got.commit }),
  };
}

/** While another process downloads the file: its partial file's size, as progress. */
async function reportOthersDownload(run: Run, f: FileFetch): Promise<void> {
  const size = (await stat(run.cache.partPath(f.key)).catch(() => undefined))?.size;
  if (size === undefined) return;
  run.reporter.phase("downloading", { file: f.file });
  run.reporter.bytes((f.progressBase ?? 0) + size, 0, f.progressTotal ?? f.expectedSizeBytes);
}

/** A fetched file as provisionModel reports it. */
export function resultOf(got: FetchedFile): ProvisionedModel {
  const { path, sha256, sizeBytes, verified, commit } = got;
  return { path, sha256, sizeBytes, source: got.fromCache ? "cache" : "download", verified, ...(commit === undefined ? {} : { commit }) };
}
