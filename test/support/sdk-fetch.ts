import type { ExecutionContext } from "ava";
import { checkResponse } from "./openapi-check.js";

/** One HTTP exchange an SDK made: what it asked and what came back, when. */
export interface Exchange {
  method: string;
  path: string;
  status: number;
  headers: Headers;
  at: number;
}

/**
 * A fetch for the official SDKs' `fetch` option that records every exchange
 * and checks each response against the OpenAPI document (streams once they
 * end), so SDK-driven tests cover the contract as `api()` does. Call
 * `conforms()` at the end of the test.
 */
export class RecordingFetch {
  readonly exchanges: Exchange[] = [];
  private readonly checks: Promise<string[]>[] = [];

  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const res = await fetch(request);
    const url = new URL(request.url);
    this.exchanges.push({ method: request.method, path: url.pathname, status: res.status, headers: res.headers, at: Date.now() });
    const copy = res.clone();
    // A copy being read would keep the connection open after the client aborts; the abort must reach the edge.
    request.signal.addEventListener("abort", () => void copy.body?.cancel().catch(() => undefined), { once: true });
    this.checks.push(
      copy.text().then(
        (body) => checkResponse(request.method, url.pathname, { status: res.status, headers: res.headers, body }),
        // A body the client aborted cannot be checked whole; what it saw was checked by the test itself.
        () => [],
      ),
    );
    return res;
  };

  async conforms(t: ExecutionContext): Promise<void> {
    const problems = (await Promise.all(this.checks)).flat();
    t.deepEqual(problems, [], "every response the SDK received conforms to the OpenAPI document");
  }

  /** Exchanges on one path, oldest first. */
  on(path: string): Exchange[] {
    return this.exchanges.filter((e) => e.path === path);
  }
}
