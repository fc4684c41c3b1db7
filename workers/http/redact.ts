// Credentials for engines (API keys, bearer tokens, cookies) must never reach
// a log line, an error message or a WorkerFailure: every text the HTTP layer
// produces passes through here first.

export const REDACTED = "[redacted]";

const SENSITIVE_HEADERS = new Set(["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"]);

/** Whether a header (any case) carries a credential. */
export function isSensitiveHeader(name: string): boolean {
  return SENSITIVE_HEADERS.has(name.toLowerCase());
}

/**
 * A copy fit for logs: Authorization, Proxy-Authorization, Cookie,
 * Set-Cookie, X-Api-Key and api-key (any case) become "[redacted]"; list
 * values (Node's IncomingHttpHeaders) are joined with ", "; absent ones dropped.
 */
export function redactHeaders(headers: Readonly<Record<string, string | string[] | number | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = isSensitiveHeader(name) ? REDACTED : Array.isArray(value) ? value.join(", ") : String(value);
  }
  return out;
}

// "Bearer" and its token: token68 characters and anything else short of whitespace, quotes, brackets or separators.
const BEARER = /\bBearer\s+[^\s"'`<>()[\]{},;]+/gi;

/**
 * `text` with every occurrence of each secret, and every "Bearer <token>",
 * replaced by "[redacted]". Empty secrets are ignored; longer secrets are
 * replaced first so one that contains another is redacted whole.
 */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text.replace(BEARER, REDACTED);
  for (const secret of [...secrets].filter((s) => s !== "").sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join(REDACTED);
  }
  return out;
}

/**
 * The strings to redact for a set of request headers: each sensitive value,
 * and its credential without an auth scheme ("sk-..." of "Bearer sk-..."),
 * since engines echo the bare key in their errors.
 */
export function secretsOfHeaders(headers: Readonly<Record<string, string>> | undefined): string[] {
  const secrets: string[] = [];
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (!isSensitiveHeader(name) || value === "") continue;
    secrets.push(value);
    const credential = /authorization$/i.test(name) ? /^\S+\s+(\S.*)$/.exec(value)?.[1] : undefined;
    if (credential) secrets.push(credential);
  }
  return secrets;
}
