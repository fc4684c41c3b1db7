// hf: refs. One file (a GGUF for llama.cpp): the model cache, else the hub's
// own cache, else a download. A whole repository (for vLLM and TGI): its
// files listed at one commit and each fetched the same way into one
// snapshot directory, laid out as in the repository.
import { stat } from "node:fs/promises";
import path from "node:path";
import { hubFileKey, hubRepoKey } from "../../contracts/model-cache.js";
import { cachedFile, fetchFile, resultOf, type FetchedFile, type FileFetch } from "./cached-fetch.js";
import { ensureSpace } from "./disk-space.js";
import { gitBlobOidOfFile, manifestDigest } from "./file-hash.js";
import { listRepo, resolveUrl, type HubAuth, type RepoFile } from "./hub-protocol.js";
import type { HubSettings } from "./hub-settings.js";
import { findInHubCache, hashedFile } from "./local-files.js";
import type { CachedFile } from "./model-cache.js";
import type { ProvisionedModel, Run } from "./provision-types.js";

export interface HubRef {
  org: string;
  repo: string;
  revision?: string;
}

const SHA256 = /^[0-9a-f]{64}$/;
const GIT_OID = /^[0-9a-f]{40}$/;

export async function provisionHubFile(run: Run, ref: HubRef & { file: string }): Promise<ProvisionedModel> {
  const settings = run.settings!;
  const repoId = `${ref.org}/${ref.repo}`;
  const revision = ref.revision ?? "main";
  run.reporter.phase("resolving", { file: ref.file });
  const location = hubFileSpec(settings, repoId, revision, ref.file);
  const spec: FileFetch = {
    ...location,
    expectedSha256: run.expectedSha256,
    source: location.label,
    linkPath: (commit) => path.join(run.cache.hubSnapshotDir(repoId, commit ?? revision), ...ref.file.split("/")),
  };
  // Ours first (no hashing), then the hub's cache (hashed once), then the network.
  const ours = await cachedFile(run, spec);
  if (ours !== undefined) return resultOf(ours);
  const theirs = await hubCacheFile(run, repoId, revision, ref.file, { sha256: run.expectedSha256 });
  return theirs ?? resultOf(await fetchFile(run, spec));
}

export async function provisionHubRepo(run: Run, ref: HubRef): Promise<ProvisionedModel> {
  const settings = run.settings!;
  const repoId = `${ref.org}/${ref.repo}`;
  const revision = ref.revision ?? "main";
  const key = hubRepoKey(settings.endpoint, repoId, revision);
  run.reporter.phase("resolving");
  const cached = await cachedRepo(run, key);
  if (cached !== undefined) return cached;
  const listing = await listRepo(settings.endpoint, repoId, revision, authOf(settings), run.http);
  const dir = run.cache.hubSnapshotDir(repoId, listing.commit);
  const total = listing.files.reduce((sum, f) => sum + f.sizeBytes, 0);
  await ensureSpace(run.cache.root, await missingBytes(run, listing.files), `hf:${repoId}@${revision}`, run.statfs);
  const files: CachedFile[] = [];
  let base = 0;
  let verified = true;
  let downloaded = false;
  for (const file of listing.files) {
    const got = await repoFile(run, settings, repoId, listing.commit, dir, file, base, total);
    files.push({ path: file.path, sha256: got.sha256, sizeBytes: got.sizeBytes });
    verified &&= got.verified;
    downloaded ||= !got.fromCache;
    base += file.sizeBytes;
    run.reporter.bytes(base, 0, total);
  }
  const fetchedAt = new Date().toISOString();
  await run.cache.writeEntry({
    kind: "repo",
    key,
    source: `hf:${repoId}@${revision}`,
    commit: listing.commit,
    dir: run.cache.relative(dir),
    files,
    verified,
    fetchedAt,
  });
  return {
    path: dir,
    sha256: manifestDigest(files),
    sizeBytes: total,
    files,
    source: downloaded ? "download" : "cache",
    verified,
    commit: listing.commit,
  };
}

/** A repository fetched before whose files are all still there: no request at all. */
async function cachedRepo(run: Run, key: string): Promise<ProvisionedModel | undefined> {
  const entry = await run.cache.readEntry("repo", key);
  if (entry === undefined) return undefined;
  const dir = run.cache.absolute(entry.dir);
  for (const f of entry.files) {
    const info = await stat(path.join(dir, ...f.path.split("/"))).catch(() => undefined);
    if (info === undefined || !info.isFile() || info.size !== f.sizeBytes) return undefined;
  }
  const sizeBytes = entry.files.reduce((sum, f) => sum + f.sizeBytes, 0);
  return {
    path: dir,
    sha256: manifestDigest(entry.files),
    sizeBytes,
    files: entry.files,
    source: "cache",
    verified: entry.verified,
    commit: entry.commit,
  };
}

async function repoFile(
  run: Run,
  settings: HubSettings,
  repoId: string,
  commit: string,
  dir: string,
  file: RepoFile,
  base: number,
  total: number,
): Promise<FetchedFile> {
  const linkPath = path.join(dir, ...file.path.split("/"));
  run.reporter.phase("downloading", { file: file.path, bytesDone: base, bytesTotal: total });
  const inHubCache = await hubCacheFile(run, repoId, commit, file.path, file, { base, total });
  if (inHubCache !== undefined && inHubCache.sizeBytes === file.sizeBytes) {
    await run.cache.link(linkPath, inHubCache.path);
    return {
      path: linkPath,
      sha256: inHubCache.sha256,
      sizeBytes: inHubCache.sizeBytes,
      verified: inHubCache.verified,
      fromCache: true,
      commit,
    };
  }
  return fetchFile(run, {
    ...hubFileSpec(settings, repoId, commit, file.path),
    expectedSha256: file.sha256,
    expectedGitOid: file.gitOid,
    expectedSizeBytes: file.sizeBytes,
    source: `hf:${repoId}@${commit}/${file.path}`,
    linkPath: () => linkPath,
    progressBase: base,
    progressTotal: total,
  });
}

/** Bytes the repository still needs: files whose blob (known by LFS sha256) is not in the cache yet. */
async function missingBytes(run: Run, files: RepoFile[]): Promise<number> {
  let missing = 0;
  for (const f of files) {
    if (f.sha256 === undefined || !(await run.cache.hasBlob(f.sha256, f.sizeBytes))) missing += f.sizeBytes;
  }
  return missing;
}

/**
 * The file from the hub's own cache, when it is there and its bytes are what
 * the hub's clients named them (the LFS sha256, or the git blob id of a file
 * kept in git) and what is expected; hashed once, then recalled while the
 * file does not change.
 */
async function hubCacheFile(
  run: Run,
  repoId: string,
  revision: string,
  file: string,
  expected: { sha256?: string; gitOid?: string },
  progress: { base: number; total?: number } = { base: 0 },
): Promise<ProvisionedModel | undefined> {
  const hit = await findInHubCache(run.settings!.hubCacheDir, repoId, revision, file);
  if (hit === undefined) return undefined;
  const size = (await stat(hit.path)).size;
  const total = progress.total ?? size;
  run.reporter.phase("verifying", { file, bytesDone: progress.base, bytesTotal: total });
  const { sha256, sizeBytes } = await hashedFile(run.cache, hit.path, (done) => run.reporter.bytes(progress.base + done, 0, total));
  const claimed = hit.blobName !== undefined && SHA256.test(hit.blobName) ? hit.blobName : undefined;
  // A copy that is not what it claims to be, or not the expected model: fetch our own.
  if ((claimed !== undefined && claimed !== sha256) || (expected.sha256 !== undefined && expected.sha256 !== sha256)) return undefined;
  const gitOid = expected.gitOid ?? (hit.blobName !== undefined && GIT_OID.test(hit.blobName) ? hit.blobName : undefined);
  if (gitOid !== undefined && (await gitBlobOidOfFile(hit.path, sizeBytes)) !== gitOid) return undefined;
  const verified = claimed !== undefined || expected.sha256 !== undefined || gitOid !== undefined;
  return { path: hit.path, sha256, sizeBytes, source: "hf-cache", verified };
}

function hubFileSpec(
  settings: HubSettings,
  repoId: string,
  revision: string,
  file: string,
): Pick<FileFetch, "key" | "url" | "label" | "file" | "hub"> {
  const url = resolveUrl(settings.endpoint, repoId, revision, file);
  const label = `hf:${repoId}${revision === "main" ? "" : `@${revision}`}/${file}`;
  return { key: hubFileKey(url), url, label, file, hub: { origin: new URL(settings.endpoint).origin, auth: authOf(settings) } };
}

export function authOf(settings: HubSettings): HubAuth {
  return { token: settings.token, tokenSource: settings.tokenSource };
}
