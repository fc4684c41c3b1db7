// Every failure of the model provisioner, classified once, so the sidecar can
// map it to an error code (digest_mismatch → UNTRUSTED_ARTIFACT) without
// reading messages, and redacted once, at the provisioner's boundary.
import { redactText } from "../http/redact.js";

export type ProvisionErrorKind =
  /** The model_ref does not parse. */
  | "invalid_ref"
  /** s3:// and oci:// refs: not fetched yet. */
  | "unsupported_scheme"
  /** An option or environment variable (HF_ENDPOINT, expectedSha256) is unusable. */
  | "config"
  /** No such repository, revision, file or local path. */
  | "not_found"
  /** A gated or private repository without a token, or a token the hub refused. */
  | "unauthorized"
  /** The connection failed, was cut or stalled, or the server was briefly unavailable, after the retries. */
  | "network"
  /** Any other answer the provisioner cannot use. */
  | "http_error"
  /** The bytes received are not as many as announced. */
  | "size_mismatch"
  /** The bytes' sha256 (or git blob id) is not the expected one; nothing was kept. */
  | "digest_mismatch"
  /** The download would not fit on the cache's filesystem; refused before it started. */
  | "no_space"
  /** The caller's signal aborted; a partial download is kept for the next attempt. */
  | "aborted"
  /** A local filesystem operation failed. */
  | "io";

export class ProvisionError extends Error {
  /** Whether trying again (the same request, later) may succeed. */
  readonly retriable: boolean;

  constructor(
    readonly kind: ProvisionErrorKind,
    message: string,
    options: { cause?: unknown; retriable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ProvisionError";
    this.retriable = options.retriable ?? kind === "network";
  }
}

/**
 * `err` as a ProvisionError whose message, and whose cause's, contain none of
 * `secrets`. A fresh error is built rather than the message edited, because
 * the stack of the original (and of its cause) still holds the old text.
 */
export function redactedError(err: unknown, secrets: readonly string[]): ProvisionError {
  const redact = (text: string): string => redactText(text, secrets);
  if (err instanceof ProvisionError) {
    const cause = err.cause === undefined ? undefined : new Error(redact(messageOf(err.cause)));
    return new ProvisionError(err.kind, redact(err.message), { cause, retriable: err.retriable });
  }
  return new ProvisionError("io", redact(`model provisioning failed: ${messageOf(err)}`));
}

export function messageOf(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

/** A URL fit for messages and logs: no query (signed CDN URLs carry credentials there), no userinfo. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url.replace(/[?#].*$/, "");
  }
}
