// The one mapping from what an engine's HTTP API does wrong (a status, a
// socket error, an error body) to the WorkerError taxonomy, so every adapter
// classifies the same failure the same way.
import { WorkerErrorKind } from "../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure, isRetriableByDefault } from "../engine-adapter.js";
import { redactText } from "./redact.js";

const K = WorkerErrorKind;

/** The kind of an engine's non-2xx HTTP status. */
export function kindOfStatus(status: number): WorkerErrorKind {
  switch (status) {
    case 400:
    case 404:
    case 413:
    case 422:
      return K.WORKER_ERROR_KIND_INVALID_REQUEST;
    // Wrong or missing credentials are the deployment's fault, not the request's: another replica may do.
    case 401:
    case 403:
      return K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE;
    case 408:
    case 504:
      return K.WORKER_ERROR_KIND_TIMEOUT;
    case 429:
      return K.WORKER_ERROR_KIND_CAPACITY;
    // Engines answer 503 while loading a model or when overloaded.
    case 503:
      return K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE;
  }
  if (status === 424 || (status >= 500 && status <= 599)) return K.WORKER_ERROR_KIND_ENGINE_ERROR;
  return K.WORKER_ERROR_KIND_INTERNAL;
}

/**
 * The kind of a transport error: Node's socket errors by `code`, undici's
 * equivalents (for adapters that use fetch, whose "fetch failed" wraps the
 * real error in `cause`), and timeouts: `code` ETIMEDOUT (this layer's own
 * timeout errors carry it) or `name` "TimeoutError" (AbortSignal.timeout).
 */
export function kindOfSocketError(err: unknown): WorkerErrorKind {
  for (let e: unknown = err, depth = 0; e && typeof e === "object" && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown };
    switch (code) {
      case "ECONNREFUSED":
      case "ENOTFOUND":
      case "EHOSTUNREACH":
      case "EAI_AGAIN":
        return K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE;
      case "ECONNRESET":
      case "EPIPE":
      case "UND_ERR_SOCKET":
        return K.WORKER_ERROR_KIND_RESET;
      case "ETIMEDOUT":
      case "UND_ERR_CONNECT_TIMEOUT":
      case "UND_ERR_HEADERS_TIMEOUT":
      case "UND_ERR_BODY_TIMEOUT":
        return K.WORKER_ERROR_KIND_TIMEOUT;
    }
    if (name === "TimeoutError") return K.WORKER_ERROR_KIND_TIMEOUT;
    if (message === "socket hang up") return K.WORKER_ERROR_KIND_RESET;
  }
  return K.WORKER_ERROR_KIND_INTERNAL;
}

/**
 * The human message in an engine's error body:
 * llama.cpp and OpenAI/vLLM `{"error":{"message":...}}`, vLLM
 * `{"object":"error","message":...}`, TGI `{"error":...,"error_type":...}`,
 * Triton `{"error":...}`, FastAPI `{"detail":...}`; otherwise the body's
 * first 200 characters (trimmed).
 */
export function engineErrorMessage(body: string): string {
  try {
    const json: unknown = JSON.parse(body);
    if (json && typeof json === "object") {
      const { error, message, detail } = json as { error?: unknown; message?: unknown; detail?: unknown };
      if (typeof error === "string" && error !== "") return error;
      const nested = error && typeof error === "object" ? (error as { message?: unknown }).message : undefined;
      if (typeof nested === "string" && nested !== "") return nested;
      if (typeof message === "string" && message !== "") return message;
      if (typeof detail === "string" && detail !== "") return detail;
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return truncate(body.trim(), 200);
}

export interface FailureDetails {
  /** The engine URL path (with query), e.g. "/completion". */
  path: string;
  /** Default "GET". */
  method?: string;
  /** The engine's HTTP status, when it answered. */
  status?: number;
  /** The engine's response body, for its message (see engineErrorMessage). */
  body?: string;
  /** The transport error, when it did not answer. */
  cause?: unknown;
  /** Overrides the kind derived from `status`, else from `cause`, else INTERNAL. */
  kind?: WorkerErrorKind;
  /** Strings to redact besides "Bearer <token>" (API keys, header values). */
  secrets?: readonly string[];
}

/** Longest failure message; engines sometimes echo whole requests back. */
const MAX_MESSAGE = 1_000;

/**
 * A WorkerFailure for a failed engine call, with message
 * "POST /completion: HTTP 400: <engine message>" or
 * "GET /health: connect ECONNREFUSED 127.0.0.1:8081", redacted, and
 * `retriable` by kind (ENGINE_UNAVAILABLE, CAPACITY, TIMEOUT, RESET).
 */
export function failureOf(d: FailureDetails): WorkerFailure {
  const secrets = d.secrets ?? [];
  const kind =
    d.kind ??
    (d.status !== undefined ? kindOfStatus(d.status) : d.cause !== undefined ? kindOfSocketError(d.cause) : K.WORKER_ERROR_KIND_INTERNAL);
  const parts = [`${d.method ?? "GET"} ${d.path}`];
  if (d.status !== undefined) parts.push(`HTTP ${d.status}`);
  // Redact the whole body before extracting from it: a cut at 200 characters could split a secret.
  const detail = d.body !== undefined ? engineErrorMessage(redactText(d.body, secrets)) : d.cause !== undefined ? describe(d.cause) : "";
  if (detail !== "") parts.push(detail);
  // Redact before truncating, for the same reason.
  const message = truncate(redactText(parts.join(": "), secrets), MAX_MESSAGE);
  return new WorkerFailure(kind, message, isRetriableByDefault(kind));
}

/** The engine's HTTP status in a failure failureOf wrote ("POST <path>: HTTP <status>: ..."); undefined when it did not answer. */
export function statusOfFailure(err: WorkerFailure): number | undefined {
  const match = /^[A-Z]+ \S+: HTTP (\d{3})(?::|$)/.exec(err.message);
  return match ? Number(match[1]) : undefined;
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message || (err as { code?: string }).code || err.name;
  return String(err);
}

/** At most `max` UTF-16 units, without leaving half a surrogate pair at the cut. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.charCodeAt(max - 1) >= 0xd800 && text.charCodeAt(max - 1) <= 0xdbff ? max - 1 : max;
  return text.slice(0, cut);
}
