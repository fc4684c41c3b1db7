import type { ExecutionContext } from "ava";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { checkResponse } from "./openapi-check.js";
import type { Json } from "./json.js";

export interface ApiResponse<T = Json> {
  status: number;
  headers: Headers;
  text: string;
  json: T;
}

/**
 * fetch + a check of the response against the OpenAPI document: every HTTP
 * response the integration tests see goes through here or through `stream`.
 */
export async function api<T = Json>(
  t: ExecutionContext,
  baseUrl: string,
  method: string,
  path: string,
  init: { body?: unknown; rawBody?: string | Uint8Array; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | Uint8Array | undefined = init.rawBody;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers["Content-Type"] ??= "application/json";
  }
  const res = await fetch(baseUrl + path, { method, headers, body });
  const text = await res.text();
  const problems = checkResponse(method, path, { status: res.status, headers: res.headers, body: text });
  t.deepEqual(problems, [], `${method} ${path} -> ${res.status} conforms to the OpenAPI document (${text.slice(0, 300)})`);
  let json: Json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export interface SseEvent {
  id?: string;
  event: string;
  data: Json;
}

export interface SseStream {
  status: number;
  headers: Headers;
  events: SseEvent[];
  /** Resolves when the server ends the stream (or the reader is aborted). */
  done: Promise<void>;
  /** Resolves once `n` events (optionally of a kind) have arrived. */
  waitFor(n: number, kind?: string): Promise<void>;
  abort(): void;
  /** Raw body so far, for the final OpenAPI check. */
  raw(): string;
}

/** An SSE client (fetch + eventsource-parser) that records every event. */
export async function stream(baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const controller = new AbortController();
  let aborted = false;
  const res = await fetch(baseUrl + path, { headers: { Accept: "text/event-stream", ...headers }, signal: controller.signal });
  const events: SseEvent[] = [];
  let raw = "";
  const waiters: { n: number; kind?: string; resolve: () => void }[] = [];
  const settle = () => {
    for (const w of [...waiters]) {
      const count = w.kind ? events.filter((e) => e.event === w.kind).length : events.length;
      if (count >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  const parser = createParser({
    onEvent(e: EventSourceMessage) {
      events.push({ id: e.id, event: e.event ?? "message", data: JSON.parse(e.data) });
      settle();
    },
  });
  const done = (async () => {
    if (!res.body) return;
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body) {
        const s = decoder.decode(chunk as Uint8Array, { stream: true });
        raw += s;
        parser.feed(s);
      }
    } catch (err) {
      // After abort() the body read fails in whichever way undici chooses; that is the expected end.
      if (!aborted) throw err;
    } finally {
      for (const w of waiters.splice(0)) w.resolve();
    }
  })();
  return {
    status: res.status,
    headers: res.headers,
    events,
    done,
    waitFor: (n, kind) =>
      new Promise<void>((resolve) => {
        waiters.push({ n, kind, resolve });
        settle();
      }),
    abort: () => {
      aborted = true;
      controller.abort();
    },
    raw: () => raw,
  };
}

/** Checks a finished SSE exchange against the OpenAPI document. */
/** The `i` of every token frame, in the order they came. */
export function tokenIndices(events: SseEvent[]): number[] {
  return events.filter((e) => e.event === "token").map((e) => e.data.i as number);
}

export function assertStreamConforms(t: ExecutionContext, path: string, s: SseStream): void {
  t.deepEqual(
    checkResponse("GET", path, { status: s.status, headers: s.headers, body: s.raw() }),
    [],
    `GET ${path} conforms to the OpenAPI document`,
  );
}

export { taskBody } from "./task-body.js";
