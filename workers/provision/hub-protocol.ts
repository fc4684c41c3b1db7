// The Hugging Face Hub's side of provisioning, as huggingface_hub speaks it:
// the resolve URL of a file (`file_download.py` `hf_hub_url`), what its
// answer says about the file (`get_hf_file_metadata`: X-Repo-Commit,
// X-Linked-Etag, X-Linked-Size, ETag), what an error answer means
// (`utils/_http.py` `hf_raise_for_status`: X-Error-Code), and the listing of
// a whole repository (`hf_api.py` `model_info` for the commit, then
// `list_repo_tree` at that commit, paged by `Link: <…>; rel="next"`).
import type http from "node:http";
import { httpGet, readText, type Hop, type HttpGetOptions } from "./http-get.js";
import { displayUrl, ProvisionError } from "./provision-error.js";

/** What the hub's answer for one file says about it. */
export interface HubFileMeta {
  /** The commit the revision resolved to. */
  commit?: string;
  /** An LFS file's sha256 (X-Linked-Etag). */
  sha256?: string;
  /** A file kept in git: its git blob id (the ETag of the hub's own 200). */
  gitOid?: string;
  /** An LFS file's size (X-Linked-Size). */
  sizeBytes?: number;
}

export interface RepoListing {
  commit: string;
  files: RepoFile[];
}

export interface RepoFile {
  /** Relative, "/"-separated, checked to stay inside the repository. */
  path: string;
  sizeBytes: number;
  /** LFS files only. */
  sha256?: string;
  gitOid?: string;
}

/** Who is asking, for messages: never the token itself. */
export interface HubAuth {
  token: string | undefined;
  tokenSource: string | undefined;
}

const SHA256 = /^[0-9a-f]{64}$/;
const GIT_OID = /^[0-9a-f]{40}$/;
const MAX_API_BYTES = 64 * 1024 * 1024;
const MAX_ERROR_BYTES = 64 * 1024;

// The resolve URL names the file's entry in the model cache, which core reads too.
export { resolveUrl } from "../../contracts/model-cache.js";

/** An ETag without its weak prefix and quotes, as huggingface_hub's `_normalize_etag`. */
export function normalizeEtag(etag: string | undefined): string | undefined {
  if (etag === undefined) return undefined;
  return etag.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/**
 * Reads the hub's metadata from those of `answers` (redirects, then the final
 * answer) that came from the hub's own origin, not from the CDN's.
 */
export function hubMetaOf(answers: readonly Hop[], hubOrigin: string): HubFileMeta {
  const meta: HubFileMeta = {};
  const fromHub = answers.filter((a) => new URL(a.url).origin === hubOrigin);
  for (const { headers } of fromHub) {
    const commit = header(headers, "x-repo-commit");
    if (commit !== undefined && GIT_OID.test(commit)) meta.commit = commit;
    const linked = normalizeEtag(header(headers, "x-linked-etag"))?.toLowerCase();
    if (linked !== undefined && SHA256.test(linked)) meta.sha256 = linked;
    const size = Number(header(headers, "x-linked-size") ?? NaN);
    if (Number.isSafeInteger(size) && size >= 0) meta.sizeBytes = size;
  }
  // A file kept in git is served by the hub itself, its ETag being its git blob id.
  const last = fromHub.at(-1);
  const etag = normalizeEtag(last === undefined ? undefined : header(last.headers, "etag"))?.toLowerCase();
  if (
    last === answers.at(-1) &&
    (last?.status === 200 || last?.status === 206) &&
    meta.sha256 === undefined &&
    etag !== undefined &&
    GIT_OID.test(etag)
  ) {
    meta.gitOid = etag;
  }
  return meta;
}

/** The ProvisionError for a hub answer that is not a success. */
export function hubErrorOf(status: number, headers: http.IncomingHttpHeaders, what: string, auth: HubAuth): ProvisionError {
  const code = header(headers, "x-error-code");
  const message = header(headers, "x-error-message");
  const detail = `${status}${code === undefined ? "" : ` ${code}`}${message === undefined ? "" : `: ${message}`}`;
  const via = auth.tokenSource ?? "HF_TOKEN";
  if (code === "GatedRepo") {
    return new ProvisionError(
      "unauthorized",
      auth.token === undefined
        ? `${what}: the repository is gated (${detail}); set HF_TOKEN to a token of an account that has accepted its terms`
        : `${what}: the token from ${via} has no access to this gated repository (${detail}); accept its terms on the hub with that account, or use another token`,
    );
  }
  if (code === "RepoNotFound" || code === "RevisionNotFound" || code === "EntryNotFound" || status === 404) {
    const hint = auth.token === undefined && code === "RepoNotFound" ? "; if it is private or gated, set HF_TOKEN" : "";
    return new ProvisionError("not_found", `${what}: not found on the hub (${detail})${hint}`);
  }
  if (status === 401 || status === 403) {
    return new ProvisionError(
      "unauthorized",
      auth.token === undefined
        ? `${what}: the hub wants a token (${detail}); set HF_TOKEN`
        : `${what}: the hub refused the token from ${via} (${detail}); check HF_TOKEN`,
    );
  }
  if (status === 429 || status >= 500) return new ProvisionError("network", `${what}: the hub answered ${detail}`);
  return new ProvisionError("http_error", `${what}: the hub answered ${detail}`);
}

/** The commit a revision names and every file of the repository at that commit. */
export async function listRepo(
  endpoint: string,
  repoId: string,
  revision: string,
  auth: HubAuth,
  http: HttpGetOptions,
): Promise<RepoListing> {
  const what = `hf:${repoId}@${revision}`;
  const info = await getJson(`${endpoint}/api/models/${repoId}/revision/${encodeURIComponent(revision)}`, what, endpoint, auth, http);
  const commit = (info as { sha?: unknown }).sha;
  if (typeof commit !== "string" || !GIT_OID.test(commit))
    throw new ProvisionError("http_error", `${what}: the hub's answer names no commit`);
  const files: RepoFile[] = [];
  let next: string | undefined = `${endpoint}/api/models/${repoId}/tree/${commit}?recursive=true`;
  while (next !== undefined) {
    const { body, link } = await getJsonPage(next, what, endpoint, auth, http);
    if (!Array.isArray(body)) throw new ProvisionError("http_error", `${what}: the hub's file list is not a list`);
    for (const entry of body) {
      const file = repoFileOf(entry, what);
      if (file !== undefined) files.push(file);
    }
    next = link;
  }
  if (files.length === 0) throw new ProvisionError("not_found", `${what}: the repository has no files`);
  return { commit, files };
}

function repoFileOf(entry: unknown, what: string): RepoFile | undefined {
  const e = entry as { type?: unknown; path?: unknown; size?: unknown; oid?: unknown; lfs?: { oid?: unknown; size?: unknown } };
  if (e === null || typeof e !== "object" || e.type !== "file") return undefined;
  if (typeof e.path !== "string" || !isSafeRelativePath(e.path))
    throw new ProvisionError("http_error", `${what}: the hub listed an unusable path ${JSON.stringify(e.path)}`);
  const size = e.lfs?.size ?? e.size;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0)
    throw new ProvisionError("http_error", `${what}: no size for ${e.path}`);
  const sha256 = typeof e.lfs?.oid === "string" && SHA256.test(e.lfs.oid) ? e.lfs.oid : undefined;
  const gitOid = sha256 === undefined && typeof e.oid === "string" && GIT_OID.test(e.oid) ? e.oid : undefined;
  return { path: e.path, sizeBytes: size, ...(sha256 === undefined ? {} : { sha256 }), ...(gitOid === undefined ? {} : { gitOid }) };
}

/** A path a listing may name: relative, no empty, "." or ".." segments, no backslashes or NULs. */
export function isSafeRelativePath(p: string): boolean {
  return (
    p !== "" &&
    !p.startsWith("/") &&
    !p.includes("\\") &&
    !p.includes("\0") &&
    p.split("/").every((s) => s !== "" && s !== "." && s !== "..")
  );
}

async function getJson(url: string, what: string, endpoint: string, auth: HubAuth, http: HttpGetOptions): Promise<unknown> {
  return (await getJsonPage(url, what, endpoint, auth, http)).body;
}

async function getJsonPage(
  url: string,
  what: string,
  endpoint: string,
  auth: HubAuth,
  http: HttpGetOptions,
): Promise<{ body: unknown; link: string | undefined }> {
  const origin = new URL(endpoint).origin;
  const { response } = await httpGet(url, { ...http, token: auth.token, authOrigin: origin, headers: { accept: "application/json" } });
  const status = response.statusCode ?? 0;
  if (status !== 200) {
    await readText(response, MAX_ERROR_BYTES, http.signal).catch(() => "");
    throw hubErrorOf(status, response.headers, what, auth);
  }
  const text = await readText(response, MAX_API_BYTES, http.signal);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ProvisionError("http_error", `${what}: ${displayUrl(url)} did not answer JSON`);
  }
  return { body, link: nextLink(header(response.headers, "link"), url, origin) };
}

/**
 * The rel="next" URL of a Link header, moved onto the endpoint's origin:
 * a mirror relaying the hub's API may pass the hub's own links on, and the
 * token must not follow them elsewhere.
 */
function nextLink(link: string | undefined, base: string, origin: string): string | undefined {
  for (const part of link?.split(",") ?? []) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (m === null || !/\brel="?next"?/.test(m[2]!)) continue;
    const next = new URL(m[1]!, base);
    return `${origin}${next.pathname}${next.search}`;
  }
  return undefined;
}

function header(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
