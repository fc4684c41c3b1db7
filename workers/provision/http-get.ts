// One GET (or HEAD) that follows redirects the way the hub's clients do: the
// Authorization header goes to the hub's own origin only, never to a CDN a
// redirect points at, and every hop's headers are kept, because the hub puts
// what identifies an LFS file (X-Linked-Etag, X-Linked-Size, X-Repo-Commit)
// on its redirect, not on the CDN's answer.
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import { displayUrl, messageOf, ProvisionError } from "./provision-error.js";

export interface HttpGetOptions {
  method?: "GET" | "HEAD";
  headers?: Record<string, string>;
  /** Sent as `Authorization: Bearer …` to URLs of `authOrigin` only. */
  token?: string;
  authOrigin?: string;
  signal?: AbortSignal;
  /** Extra certificate authorities trusted besides the system's (a private mirror's CA). */
  ca?: string | readonly string[];
  /** Longest silence of the connection, while connecting or reading, default 60 s. */
  idleTimeoutMs?: number;
  /** Called with each redirect before it is followed; throwing stops there (say, the announced size cannot fit). */
  beforeRedirect?: (hop: Hop) => void | Promise<void>;
}

export interface Hop {
  url: string;
  status: number;
  headers: http.IncomingHttpHeaders;
}

export interface HttpGetResult {
  /** The final answer (not a redirect), its body unread. */
  response: http.IncomingMessage;
  url: string;
  /** The redirect answers before it, in order. */
  redirects: Hop[];
}

const MAX_REDIRECTS = 10;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export async function httpGet(url: string, options: HttpGetOptions = {}): Promise<HttpGetResult> {
  const redirects: Hop[] = [];
  let current = url;
  for (;;) {
    const response = await requestOnce(current, options);
    const status = response.statusCode ?? 0;
    const location = response.headers.location;
    if (!REDIRECTS.has(status) || location === undefined) return { response, url: current, redirects };
    response.resume();
    const hop = { url: current, status, headers: response.headers };
    redirects.push(hop);
    await options.beforeRedirect?.(hop);
    if (redirects.length > MAX_REDIRECTS)
      throw new ProvisionError("http_error", `GET ${displayUrl(url)}: more than ${MAX_REDIRECTS} redirects`);
    const next = new URL(location, current);
    if (new URL(current).protocol === "https:" && next.protocol !== "https:") {
      throw new ProvisionError("http_error", `GET ${displayUrl(current)} redirected to ${displayUrl(next.href)}: refusing to leave https`);
    }
    current = next.href;
  }
}

/** Reads a whole body as text, refusing one above `maxBytes` (an API answer, an error page). */
export async function readText(response: http.IncomingMessage, maxBytes: number, signal?: AbortSignal): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      if (signal?.aborted) throw abortError();
      size += chunk.length;
      if (size > maxBytes) {
        response.destroy();
        throw new ProvisionError("http_error", `answer larger than ${maxBytes} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof ProvisionError) throw err;
    throw new ProvisionError("network", `connection lost while reading an answer: ${messageOf(err)}`, { cause: err });
  }
  return Buffer.concat(chunks).toString("utf8");
}

export function abortError(): ProvisionError {
  return new ProvisionError("aborted", "model provisioning was cancelled", { retriable: false });
}

function requestOnce(url: string, options: HttpGetOptions): Promise<http.IncomingMessage> {
  const target = new URL(url);
  const headers: Record<string, string> = { "user-agent": "llorch-model-provisioner", ...options.headers };
  if (options.token !== undefined && options.authOrigin !== undefined && target.origin === options.authOrigin) {
    headers.authorization = `Bearer ${options.token}`;
  }
  const signal = options.signal;
  if (signal?.aborted) return Promise.reject(abortError());
  const idleMs = options.idleTimeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      req.destroy();
      reject(abortError());
    };
    const lib = target.protocol === "https:" ? https : http;
    const tlsOptions =
      target.protocol === "https:" && options.ca !== undefined ? { ca: [...tls.rootCertificates, ...[options.ca].flat()] } : {};
    // A connection per request (no keep-alive pool): the idle timeout set on it then guards this transfer only.
    const req = lib.request(target, { method: options.method ?? "GET", headers, agent: false, ...tlsOptions }, (response) => {
      signal?.removeEventListener("abort", onAbort);
      // The idle timeout keeps guarding the body: a stalled transfer fails instead of hanging.
      response.socket.setTimeout(idleMs, () =>
        response.destroy(new ProvisionError("network", `${displayUrl(url)}: no data for ${idleMs / 1000} s`)),
      );
      if (signal !== undefined) {
        const abortBody = (): void => void response.destroy(abortError());
        signal.addEventListener("abort", abortBody, { once: true });
        response.once("close", () => signal.removeEventListener("abort", abortBody));
      }
      resolve(response);
    });
    req.setTimeout(idleMs, () => req.destroy(new ProvisionError("network", `${displayUrl(url)}: no answer within ${idleMs / 1000} s`)));
    req.on("error", (err) => {
      signal?.removeEventListener("abort", onAbort);
      reject(
        err instanceof ProvisionError ? err : new ProvisionError("network", `GET ${displayUrl(url)}: ${messageOf(err)}`, { cause: err }),
      );
    });
    signal?.addEventListener("abort", onAbort, { once: true });
    req.end();
  });
}
