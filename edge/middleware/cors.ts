import type { Middleware } from "koa";

/** What a page's fetch and EventSource send beyond the safelisted headers, and the trace context the edge continues. */
export const CORS_ALLOWED_HEADERS = ["Authorization", "Content-Type", "Last-Event-ID", "X-Correlation-Id", "traceparent", "tracestate"];

/** Response headers a page may read: the correlation id, the task, backpressure and budgets. */
export const CORS_EXPOSED_HEADERS = [
  "X-Correlation-Id",
  "X-Task-Id",
  "Retry-After",
  "X-Backoff-Ms",
  "X-Budget-Tokens-Remaining",
  "X-Budget-Time-Remaining-Ms",
  "X-Budget-Cost-Remaining",
];

const ALLOWED_METHODS = ["GET", "HEAD", "POST", "DELETE"];

/** Browsers cap how long they keep a preflight's answer (Chromium: 2 h); ten minutes keeps a changed config from lingering. */
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * Cross-origin access for the pages at `origins` (or any page, for "*"). A
 * preflight from one of them is answered here, before auth (a preflight never
 * carries the key); every other request from one of them gets the allowed
 * origin and the exposed headers, then goes on. Requests from elsewhere get no
 * CORS headers, so the browser keeps the answer from the page.
 */
export function cors(origins: readonly string[]): Middleware {
  const anyOrigin = origins.includes("*");
  const allowed = new Set(origins);
  return async (ctx, next) => {
    // The answer depends on Origin, so caches must key on it (not needed when it is "*" for everyone).
    if (!anyOrigin) ctx.vary("Origin");
    const origin = ctx.get("Origin");
    if (origin === "" || !(anyOrigin || allowed.has(origin))) {
      await next();
      return;
    }
    ctx.set("Access-Control-Allow-Origin", anyOrigin ? "*" : origin);
    if (ctx.method === "OPTIONS" && ctx.get("Access-Control-Request-Method") !== "") {
      ctx.set("Access-Control-Allow-Methods", ALLOWED_METHODS.join(", "));
      ctx.set("Access-Control-Allow-Headers", CORS_ALLOWED_HEADERS.join(", "));
      ctx.set("Access-Control-Max-Age", String(PREFLIGHT_MAX_AGE_S));
      ctx.status = 204;
      return;
    }
    ctx.set("Access-Control-Expose-Headers", CORS_EXPOSED_HEADERS.join(", "));
    await next();
  };
}

/**
 * One `--cors-origin` entry, spelled as browsers send Origin: `*`, or
 * http(s)://host[:port] with nothing after it (a trailing "/" is dropped),
 * lower case, without a default port.
 */
export function corsOrigin(flag: string, value: string): string {
  if (value === "*") return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${flag}: "${value}" is not an origin such as https://app.example.com or http://127.0.0.1:3000`);
  }
  const bare = url.pathname === "/" && url.search === "" && url.hash === "" && url.username === "" && url.password === "";
  if (!/^https?:$/.test(url.protocol) || !bare) {
    throw new Error(`${flag}: "${value}" is not an origin (scheme://host[:port], nothing after it), e.g. https://app.example.com`);
  }
  return url.origin;
}

/** "*" stands alone, and never with an API key: any page could then send requests that carry a key it was given. */
export function assertCorsOrigins(origins: readonly string[], keysRequired: boolean): void {
  if (!origins.includes("*")) return;
  if (origins.length > 1) throw new Error(`--cors-origin "*" already allows every origin; give it alone or list origins instead`);
  if (keysRequired) {
    throw new Error(
      'refusing to start the edge with --cors-origin "*" and an API key: every web page could call the API with it; list the origins of your pages instead (--cors-origin https://app.example.com,http://127.0.0.1:3000)',
    );
  }
}
