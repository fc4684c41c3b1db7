// What provisionModel takes and gives, and the context one provisioning
// carries through its steps.
import type { StatFs } from "./disk-space.js";
import type { Env, HubSettings } from "./hub-settings.js";
import type { HttpGetOptions } from "./http-get.js";
import type { CachedFile, ModelCache } from "./model-cache.js";
import type { ProgressListener, ProgressReporter } from "./progress.js";

export interface ProvisionOptions {
  /** The model cache (the sidecar's --model-cache); default defaultModelCacheDir(env). */
  cacheDir?: string;
  /** HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_CACHE, LLORCH_MODEL_CACHE…; default process.env. */
  env?: Env;
  /** What relative file refs are relative to; default the working directory. */
  baseDir?: string;
  /** The digest the bytes must have (the catalog's), `<64 hex>` or `sha256:<64 hex>`. */
  expectedSha256?: string;
  onProgress?: ProgressListener;
  /** Least time between two progress reports with only new byte counts, default 250 ms. */
  progressIntervalMs?: number;
  /** Aborting rejects with kind "aborted"; a download shared with other callers goes on for them. */
  signal?: AbortSignal;
  /** Tries after the first for a download cut or refused for a passing reason, default 4. */
  retries?: number;
  /** Backoff before the first retry, doubling after, default 1 s. */
  retryBaseDelayMs?: number;
  /** Longest silence of a connection, default 60 s. */
  idleTimeoutMs?: number;
  /** How often a process waiting for another's download looks again, default 200 ms. */
  lockPollMs?: number;
  /** Certificate authorities trusted besides the system's, for a mirror behind a private CA. */
  ca?: string | readonly string[];
  /** Free-space probe (fs.statfs); injectable so tests can play a full disk. */
  statfs?: StatFs;
}

export type ProvisionSource =
  /** A file: ref or relative path, used where it is. */
  | "local"
  /** Already in the model cache: no request was made. */
  | "cache"
  /** Fetched now (in part at least, for a repository). */
  | "download"
  /** Found in the Hugging Face hub's own cache and used where it is. */
  | "hf-cache";

export interface ProvisionedModel {
  /** A file, or for a whole repository (or a local directory) the directory the engine loads. */
  path: string;
  /** The file's sha256; for a directory, sha256 over its files' `<sha256>  <path>` lines (sha256sum's format), sorted by path. */
  sha256: string;
  sizeBytes: number;
  /** For a directory: every file, with a path relative to it. */
  files?: CachedFile[];
  source: ProvisionSource;
  /**
   * The bytes matched a digest known before they were read: the expected
   * digest, or the hub's (LFS sha256, git blob id). False means the sha256
   * was computed and recorded, but nobody had vouched for it.
   */
  verified: boolean;
  /** The hub commit a revision resolved to, when known. */
  commit?: string;
}

/** One provisioning in progress: what every step needs. */
export interface Run {
  cache: ModelCache;
  settings: HubSettings | undefined;
  reporter: ProgressReporter;
  signal: AbortSignal;
  http: HttpGetOptions;
  retries: number;
  retryBaseDelayMs: number;
  lockPollMs: number;
  statfs: StatFs | undefined;
  expectedSha256: string | undefined;
}
