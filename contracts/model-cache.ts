// The model cache's index as every component reads it: where the cache is by
// default, what names a ref's entry, and the entry itself. The sidecars'
// provisioner (workers/provision/model-cache.ts) writes the cache; core reads
// it to verify a catalog model that a sidecar of its host has fetched.
//
//   <root>/index/<id>.json   {"version": 1, "entry": IndexEntry}, written atomically
//
// <id> is a hash of the entry's key: `hf-file <resolve URL>` for one file of
// the hub, `hf-repo <endpoint>/<org>/<repo>@<revision>` for a whole
// repository, `url <URL>` for an https:// file, `hash:<path>` for the
// remembered sha256 of a file outside the cache.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { ModelRef } from "./model-ref.js";
import { errorCode } from "./runtime/atomic-file.js";

export type Env = Readonly<Record<string, string | undefined>>;

export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";

export interface CachedFile {
  /** Path relative to the directory of the result (a repository's snapshot), or the file name. */
  path: string;
  sha256: string;
  sizeBytes: number;
}

/** What one ref resolved to when it was fetched. */
export type IndexEntry =
  | {
      kind: "file";
      key: string;
      /** The ref or URL as shown to people (no query string). */
      source: string;
      commit?: string;
      sha256: string;
      sizeBytes: number;
      /** The sha256 matched a digest known before the bytes arrived. */
      verified: boolean;
      /** The link to the blob, relative to the cache root. */
      link: string;
      fetchedAt: string;
    }
  | {
      kind: "repo";
      key: string;
      source: string;
      commit: string;
      /** The snapshot directory, relative to the cache root. */
      dir: string;
      files: CachedFile[];
      verified: boolean;
      fetchedAt: string;
    }
  | {
      /** The sha256 of a file outside the cache (file: refs, the hub's cache), valid while size and mtime stay. */
      kind: "hash";
      key: string;
      sizeBytes: number;
      mtimeMs: number;
      sha256: string;
    };

export const INDEX_ENTRY_VERSION = 1;

/** The llorch model cache: LLORCH_MODEL_CACHE, else $XDG_CACHE_HOME/llorch/models, else ~/.cache/llorch/models. */
export function defaultModelCacheDir(env: Env = process.env): string {
  const explicit = nonEmpty(env.LLORCH_MODEL_CACHE);
  if (explicit !== undefined) return expandHome(explicit, env);
  return path.join(cacheHome(env), "llorch", "models");
}

/** HF_ENDPOINT without its trailing slashes, else the public hub (the provisioner also checks that it is a usable URL). */
export function hubEndpointOf(env: Env = process.env): string {
  return (nonEmpty(env.HF_ENDPOINT) ?? DEFAULT_HF_ENDPOINT).replace(/\/+$/, "");
}

/** The hub's URL of one file at a revision, as huggingface_hub's `hf_hub_url` builds it. */
export function resolveUrl(endpoint: string, repoId: string, revision: string, file: string): string {
  return `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${file.split("/").map(encodeURIComponent).join("/")}`;
}

export const hubFileKey = (url: string): string => `hf-file ${url}`;
export const hubRepoKey = (endpoint: string, repoId: string, revision: string): string => `hf-repo ${endpoint}/${repoId}@${revision}`;
export const urlKey = (url: string): string => `url ${url}`;

/** The key of the entry a fetched ref has (hf: and https: refs); undefined for refs that are never fetched. */
export function indexKeyOf(ref: ModelRef, hubEndpoint: string): { kind: "file" | "repo"; key: string } | undefined {
  if (ref.scheme === "https") return { kind: "file", key: urlKey(ref.url) };
  if (ref.scheme !== "hf") return undefined;
  const repoId = `${ref.org}/${ref.repo}`;
  const revision = ref.revision ?? "main";
  if (ref.file === undefined) return { kind: "repo", key: hubRepoKey(hubEndpoint, repoId, revision) };
  return { kind: "file", key: hubFileKey(resolveUrl(hubEndpoint, repoId, revision, ref.file)) };
}

export function indexEntryId(key: string): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 32);
}

export function indexEntryPath(root: string, key: string): string {
  return path.join(root, "index", `${indexEntryId(key)}.json`);
}

/** The entry of `key`, or undefined when there is none (or it is another key's, or of a layout this build does not read). */
export async function readIndexEntry<K extends IndexEntry["kind"]>(
  root: string,
  kind: K,
  key: string,
): Promise<Extract<IndexEntry, { kind: K }> | undefined> {
  let text: string;
  try {
    text = await readFile(indexEntryPath(root, key), "utf8");
  } catch (err) {
    if (errorCode(err) === "ENOENT") return undefined;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as { version?: unknown; entry?: IndexEntry };
    // Another key hashing to the same id, or a future layout: not ours to use.
    if (parsed.version !== INDEX_ENTRY_VERSION || parsed.entry?.kind !== kind || parsed.entry.key !== key) return undefined;
    return parsed.entry as Extract<IndexEntry, { kind: K }>;
  } catch {
    return undefined;
  }
}

/** $XDG_CACHE_HOME, else ~/.cache. */
export function cacheHome(env: Env): string {
  return nonEmpty(env.XDG_CACHE_HOME) ?? path.join(homeOf(env), ".cache");
}

/** "~" and "~/…" under $HOME (else the account's home); any other path as it is. */
export function expandHome(p: string, env: Env): string {
  return p === "~" || p.startsWith("~/") ? path.join(homeOf(env), p.slice(1)) : p;
}

/** undefined for an unset or blank variable: the hub's clients treat both as unset. */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value;
}

function homeOf(env: Env): string {
  return nonEmpty(env.HOME) ?? os.homedir();
}
