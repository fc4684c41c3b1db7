// One file from a URL into the blob store: streamed to a partial file in the
// cache, resumed with Range (and If-Range) after a cut or a crash, retried a
// bounded number of times with backoff, checked for size and digest, then
// renamed into place. A digest that does not match deletes the bytes.
import { createHash, type Hash } from "node:crypto";
import type http from "node:http";
import { open, readFile, rm, stat } from "node:fs/promises";
import { errorCode, writeFileAtomic } from "../../contracts/runtime/atomic-file.js";
import { waitOrAbort } from "../abortable-wait.js";
import { BodyQueue, type BodyOutcome } from "./body-to-file.js";
import { ensureSpace, type StatFs } from "./disk-space.js";
import { gitBlobOidOfFile, sha256Prefix } from "./file-hash.js";
import { hubErrorOf, hubMetaOf, type HubAuth } from "./hub-protocol.js";
import { abortError, httpGet, readText, type Hop, type HttpGetOptions, type HttpGetResult } from "./http-get.js";
import type { ModelCache } from "./model-cache.js";
import { messageOf, ProvisionError } from "./provision-error.js";

export interface DownloadSpec {
  /** The cache key: names the partial file, the lock and the index entry. */
  key: string;
  url: string;
  /** For messages: the ref ("hf:org/repo/file.gguf") or the URL without its query. */
  label: string;
  /** For progress: a path in the repository, or the URL without its query. */
  file: string;
  /** Set when `url` is the hub's: the token goes to this origin only, and its answers carry the file's identity. */
  hub?: { origin: string; auth: HubAuth };
  expectedSha256?: string;
  expectedGitOid?: string;
  expectedSizeBytes?: number;
}

export interface DownloadContext {
  cache: ModelCache;
  http: HttpGetOptions;
  signal: AbortSignal;
  /** Tries after the first. */
  retries: number;
  retryBaseDelayMs: number;
  statfs?: StatFs;
  onBytes(bytesDone: number, receivedNow: number, bytesTotal: number | undefined): void;
  onVerifying(): void;
}

export interface Downloaded {
  blob: string;
  sha256: string;
  sizeBytes: number;
  /** The bytes matched a digest known before they arrived. */
  verified: boolean;
  commit?: string;
}

/** What the partial file is a part of; written before its first byte. */
interface PartMeta {
  /** The server's strong ETag or Last-Modified, for If-Range. */
  validator?: string;
  sha256?: string;
  gitOid?: string;
  sizeBytes?: number;
}

interface Expected {
  sha256?: string;
  gitOid?: string;
  sizeBytes?: number;
  commit?: string;
}

const RETRY_MAX_DELAY_MS = 30_000;

export async function download(spec: DownloadSpec, ctx: DownloadContext): Promise<Downloaded> {
  let last: ProvisionError | undefined;
  for (let attempt = 0; attempt <= ctx.retries; attempt++) {
    if (attempt > 0) {
      const delay = Math.min(RETRY_MAX_DELAY_MS, ctx.retryBaseDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      if (!(await waitOrAbort(delay, ctx.signal))) throw abortError();
    }
    try {
      return await downloadOnce(spec, ctx, true);
    } catch (err) {
      if (!(err instanceof ProvisionError) || !err.retriable) throw err;
      last = err;
    }
  }
  throw new ProvisionError(
    last!.kind,
    `${last!.message} (gave up after ${ctx.retries + 1} attempts; the bytes so far are kept and the next try resumes)`,
    {
      cause: last,
      retriable: true,
    },
  );
}

/** A partial file on disk and what it is a part of: where a download starts. */
interface Resumable {
  part: string;
  metaPath: string;
  meta: PartMeta | undefined;
  offset: number;
  /** sha256 of the first `offset` bytes, to continue. */
  prefix: Hash;
}

async function downloadOnce(spec: DownloadSpec, ctx: DownloadContext, mayRestart: boolean): Promise<Downloaded> {
  const r = await resumable(spec, ctx);
  const headers: Record<string, string> = {};
  if (r.offset > 0) {
    headers.range = `bytes=${r.offset}-`;
    if (r.meta?.validator !== undefined) headers["if-range"] = r.meta.validator;
  }
  const beforeRedirect = (hop: Hop): Promise<void> => checkHubRedirect(spec, hop, r.offset, ctx);
  const result = await httpGet(spec.url, {
    ...ctx.http,
    headers,
    token: spec.hub?.auth.token,
    authOrigin: spec.hub?.origin,
    beforeRedirect,
  });
  const res = result.response;
  try {
    const status = res.statusCode ?? 0;
    if (status >= 400 && status !== 416) throw await failureOf(result, spec, ctx.signal);
    // Taken from now on: bytes that arrive while the checks below run are kept, even if the connection is cut meanwhile.
    const body = new BodyQueue(res);
    const expected = expectationsOf(spec, result);
    const restart = async (): Promise<Downloaded> => {
      res.destroy();
      await discard(r.part, r.metaPath);
      if (!mayRestart) throw new ProvisionError("http_error", `${spec.label}: the server's answers to a resumed download do not add up`);
      return downloadOnce(spec, ctx, false);
    };
    // The partial file is of another version (the branch moved on): start over.
    if (r.offset > 0 && !sameFile(r.meta!, expected)) return await restart();
    if (status === 416) {
      const whole = expected.sizeBytes ?? r.meta?.sizeBytes;
      return whole === r.offset ? await finish(spec, ctx, r, r.offset, r.prefix, expected) : await restart();
    }
    const range = status === 206 ? contentRangeOf(res.headers["content-range"]) : undefined;
    if (status === 206 && (range === undefined || range.start !== r.offset)) return await restart();
    if (status !== 200 && status !== 206) throw new ProvisionError("http_error", `${spec.label}: unexpected answer ${status}`);
    return await receive(spec, ctx, r, res, body, expected, range);
  } finally {
    if (!res.complete) res.destroy();
  }
}

async function resumable(spec: DownloadSpec, ctx: DownloadContext): Promise<Resumable> {
  const part = ctx.cache.partPath(spec.key);
  const metaPath = ctx.cache.partMetaPath(spec.key);
  const meta = await readMeta(metaPath);
  let offset = (await stat(part).catch(() => undefined))?.size ?? 0;
  // Bytes of unknown provenance cannot be continued.
  if (offset > 0 && meta === undefined) offset = await discard(part, metaPath);
  const prefix = offset > 0 ? await sha256Prefix(part, offset) : createHash("sha256");
  return { part, metaPath, meta, offset, prefix };
}

/** The body of a 200 (from the first byte) or a 206 (from the offset), into the partial file, then checked. */
async function receive(
  spec: DownloadSpec,
  ctx: DownloadContext,
  r: Resumable,
  res: http.IncomingMessage,
  body: BodyQueue,
  expected: Expected,
  range: { start: number; total: number | undefined } | undefined,
): Promise<Downloaded> {
  const start = range === undefined ? 0 : r.offset;
  const total = expected.sizeBytes ?? range?.total ?? contentLengthOf(res.headers, start);
  if (expected.sizeBytes !== undefined && range?.total !== undefined && range.total !== expected.sizeBytes) {
    throw new ProvisionError("size_mismatch", `${spec.label}: the server has ${range.total} bytes, ${expected.sizeBytes} were announced`);
  }
  await ensureSpace(ctx.cache.root, total === undefined ? 0 : total - start, spec.label, ctx.statfs);
  const meta: PartMeta = { validator: validatorOf(res.headers), sha256: expected.sha256, gitOid: expected.gitOid, sizeBytes: total };
  await writeFileAtomic(r.metaPath, JSON.stringify(meta));
  const hash = start > 0 ? r.prefix : createHash("sha256");
  const size = start + (await appendBody(body, r.part, start, total, hash, spec, ctx));
  if (total !== undefined && size < total)
    throw new ProvisionError("network", `${spec.label}: the connection closed after ${size} of ${total} bytes`);
  return await finish(spec, ctx, r, size, hash, expected);
}

/**
 * The hub names an LFS file's digest and size on its redirect: a file that is
 * not the expected one, or cannot fit, is refused before the CDN is asked.
 */
async function checkHubRedirect(spec: DownloadSpec, hop: Hop, offset: number, ctx: DownloadContext): Promise<void> {
  if (spec.hub === undefined || new URL(hop.url).origin !== spec.hub.origin) return;
  const meta = hubMetaOf([hop], spec.hub.origin);
  contradiction(spec, meta.sha256);
  if (meta.sizeBytes !== undefined) await ensureSpace(ctx.cache.root, meta.sizeBytes - offset, spec.label, ctx.statfs);
}

function contradiction(spec: DownloadSpec, hubSha256: string | undefined): void {
  if (spec.expectedSha256 !== undefined && hubSha256 !== undefined && hubSha256 !== spec.expectedSha256) {
    throw new ProvisionError(
      "digest_mismatch",
      `${spec.label}: the hub says its sha256 is ${hubSha256}, the expected digest is ${spec.expectedSha256}; nothing was downloaded`,
    );
  }
}

/** What the bytes must be: the caller's digest, else what the hub says; refuses at once when the two disagree. */
function expectationsOf(spec: DownloadSpec, result: HttpGetResult): Expected {
  const final = { url: result.url, status: result.response.statusCode ?? 0, headers: result.response.headers };
  const hub = spec.hub === undefined ? {} : hubMetaOf([...result.redirects, final], spec.hub.origin);
  contradiction(spec, hub.sha256);
  const sha256 = spec.expectedSha256 ?? hub.sha256;
  return {
    sha256,
    gitOid: sha256 === undefined ? (spec.expectedGitOid ?? hub.gitOid) : undefined,
    sizeBytes: spec.expectedSizeBytes ?? hub.sizeBytes,
    commit: hub.commit,
  };
}

function sameFile(meta: PartMeta, expected: Expected): boolean {
  if (meta.sha256 !== undefined || expected.sha256 !== undefined) return meta.sha256 === expected.sha256;
  if (meta.gitOid !== undefined || expected.gitOid !== undefined) return meta.gitOid === expected.gitOid;
  return expected.sizeBytes === undefined || meta.sizeBytes === undefined || meta.sizeBytes === expected.sizeBytes;
}

async function appendBody(
  body: BodyQueue,
  part: string,
  start: number,
  total: number | undefined,
  hash: Hash,
  spec: DownloadSpec,
  ctx: DownloadContext,
): Promise<number> {
  const handle = await open(part, start > 0 ? "a" : "w", 0o644);
  let outcome: BodyOutcome;
  try {
    ctx.onBytes(start, 0, total);
    let seen = 0;
    outcome = await body.writeTo(handle, (chunk) => {
      if (total !== undefined && start + seen + chunk.length > total) {
        throw new ProvisionError("size_mismatch", `${spec.label}: the server sent more than the ${total} bytes announced`);
      }
      seen += chunk.length;
      hash.update(chunk);
      ctx.onBytes(start + seen, chunk.length, total);
    });
    await handle.sync();
  } catch (err) {
    // statfs said it would fit, but something else filled the disk meanwhile.
    if (errorCode(err) === "ENOSPC" || errorCode(err) === "EDQUOT") {
      throw new ProvisionError(
        "no_space",
        `${spec.label}: the disk under ${ctx.cache.root} filled up during the download; the bytes so far are kept`,
        { cause: err },
      );
    }
    throw new ProvisionError("io", `${spec.label}: cannot write ${part}: ${messageOf(err)}`, { cause: err });
  } finally {
    await handle.close();
  }
  const { written, error } = outcome;
  if (error instanceof ProvisionError) throw error;
  if (error !== undefined) {
    const of = total === undefined ? "" : ` of ${total}`;
    throw new ProvisionError("network", `${spec.label}: the connection was lost after ${start + written}${of} bytes: ${messageOf(error)}`, {
      cause: error,
    });
  }
  return written;
}

async function finish(
  spec: DownloadSpec,
  ctx: DownloadContext,
  r: Resumable,
  size: number,
  hash: Hash,
  expected: Expected,
): Promise<Downloaded> {
  const { part, metaPath } = r;
  ctx.onVerifying();
  const sha256 = hash.digest("hex");
  const refuse = async (kind: "size_mismatch" | "digest_mismatch", why: string): Promise<never> => {
    await discard(part, metaPath);
    throw new ProvisionError(kind, `${spec.label}: ${why}; the downloaded bytes were deleted`);
  };
  if (expected.sizeBytes !== undefined && size !== expected.sizeBytes)
    await refuse("size_mismatch", `received ${size} bytes, ${expected.sizeBytes} were announced`);
  if (expected.sha256 !== undefined && sha256 !== expected.sha256)
    await refuse("digest_mismatch", `sha256 ${sha256} is not the expected ${expected.sha256}`);
  if (expected.gitOid !== undefined) {
    const oid = await gitBlobOidOfFile(part, size);
    if (oid !== expected.gitOid) await refuse("digest_mismatch", `git blob id ${oid} is not the hub's ${expected.gitOid}`);
  }
  const blob = await ctx.cache.publishBlob(part, sha256);
  await rm(metaPath, { force: true });
  return {
    blob,
    sha256,
    sizeBytes: size,
    verified: expected.sha256 !== undefined || expected.gitOid !== undefined,
    ...(expected.commit === undefined ? {} : { commit: expected.commit }),
  };
}

async function failureOf(result: HttpGetResult, spec: DownloadSpec, signal: AbortSignal): Promise<ProvisionError> {
  const res = result.response;
  const status = res.statusCode ?? 0;
  await readText(res, 64 * 1024, signal).catch(() => "");
  if (spec.hub !== undefined && new URL(result.url).origin === spec.hub.origin)
    return hubErrorOf(status, res.headers, spec.label, spec.hub.auth);
  if (status === 404 || status === 410) return new ProvisionError("not_found", `${spec.label}: not found (${status})`);
  // A CDN's signed URL can expire mid-download; the next try asks the hub for a fresh one.
  if ((status === 401 || status === 403) && spec.hub !== undefined)
    return new ProvisionError("http_error", `${spec.label}: the download server answered ${status}`, { retriable: true });
  if (status === 401 || status === 403) return new ProvisionError("unauthorized", `${spec.label}: the server answered ${status}`);
  if (status === 408 || status === 429 || status >= 500)
    return new ProvisionError("network", `${spec.label}: the server answered ${status}`);
  return new ProvisionError("http_error", `${spec.label}: the server answered ${status}`);
}

async function discard(part: string, metaPath: string): Promise<0> {
  await rm(part, { force: true });
  await rm(metaPath, { force: true });
  return 0;
}

async function readMeta(metaPath: string): Promise<PartMeta | undefined> {
  try {
    const parsed = JSON.parse(await readFile(metaPath, "utf8")) as unknown;
    return parsed !== null && typeof parsed === "object" ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function validatorOf(headers: http.IncomingHttpHeaders): string | undefined {
  const etag = headers.etag;
  // If-Range takes a strong validator only (RFC 9110 §13.1.5).
  if (etag !== undefined && !etag.startsWith("W/")) return etag;
  return headers["last-modified"];
}

function contentRangeOf(value: string | undefined): { start: number; total: number | undefined } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value ?? "");
  if (m === null) return undefined;
  return { start: Number(m[1]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

function contentLengthOf(headers: http.IncomingHttpHeaders, start: number): number | undefined {
  const length = Number(headers["content-length"]);
  return headers["content-length"] !== undefined && Number.isSafeInteger(length) ? start + length : undefined;
}
