import { validateAgainst } from "../../contracts/openapi.js";
import { checkResponse } from "./openapi-check.js";
import type { FuzzRequest } from "./request-fuzz.js";

export interface FuzzVerdict {
  status: number;
  /** Why this answer breaks the contract; empty when it holds. */
  problems: string[];
}

/**
 * Sends one fuzzed request and judges the answer: a status below 500, and a
 * response the OpenAPI document allows (which for every error is the
 * envelope). A connection the server drops is a problem too.
 */
export async function sendAndJudge(baseUrl: string, req: FuzzRequest, timeoutMs = 10_000): Promise<FuzzVerdict> {
  const label = `${req.method} ${req.path.slice(0, 120)} (${req.kind})`;
  try {
    const res = await fetch(baseUrl + req.path, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await res.text();
    // Judged by the path the server saw, after fetch normalised ".." and the like.
    const seen = new URL(baseUrl + req.path);
    const problems = judge({ ...req, path: seen.pathname + seen.search }, res, body).map((p) => `${label}: ${p}`);
    // 503 is the contract's typed "no pool can take this now" (a documented example may name an
    // engine nobody runs); any other 5xx is a bug.
    if (res.status >= 500 && res.status !== 503) problems.unshift(`${label}: ${res.status} ${body.slice(0, 200)}`);
    return { status: res.status, problems };
  } catch (err) {
    return { status: 0, problems: [`${label}: ${(err as Error).message}`] };
  }
}

const NODE_PARSER_STATUSES = new Set([408, 413, 431]);

/**
 * The contract's check, except for a path that names no operation once the
 * URL is normalised (a "..", an encoded slash): that must be the 404 envelope.
 */
function judge(req: FuzzRequest, res: Response, body: string): string[] {
  const problems = checkResponse(req.method, req.path, { status: res.status, headers: res.headers, body });
  const unrouted = problems.some((p) => p.endsWith("no such operation in the contract"));
  // Node's parser answers these before any route is known (headers past 16 KB, a stalled
  // body): any operation can get them, always as the envelope.
  const beforeRouting = NODE_PARSER_STATUSES.has(res.status) && problems.some((p) => p.includes("is not declared"));
  if (!unrouted && !beforeRouting) return problems;
  // The edge authenticates everything under /v1 before routing, so a caller without a key learns nothing of which paths exist.
  const keyless = !Object.keys(req.headers).some((h) => h.toLowerCase() === "authorization");
  const refusedFirst = res.status === 401 && keyless && req.path.startsWith("/v1/");
  if (unrouted && res.status !== 404 && !refusedFirst) return [`${res.status} for a path the contract does not declare (404 expected)`];
  if (!res.headers.has("x-correlation-id")) return ["missing header X-Correlation-Id"];
  try {
    const problem = validateAgainst("/components/schemas/ErrorEnvelope", JSON.parse(body), "body");
    return problem ? [problem.message] : [];
  } catch {
    return [`${res.status} body is not JSON`];
  }
}
