// The HTTP client every engine adapter talks through: keep-alive, phase
// timeouts (connect, response headers, gap between body chunks), capped
// jittered retries for idempotent calls only, streamed bodies decoded into
// SSE frames or JSON lines, and failures classified and redacted once, here.
import http from "node:http";
import https from "node:https";
import { WorkerErrorKind } from "../../contracts/gen/llama_orch/v1/worker.js";
import { waitOrAbort } from "../abortable-wait.js";
import { AttemptError, causeOf, flatHeaders, readBody, sendAttempt, type Call, type CallTarget } from "./engine-call.js";
import { failureOf } from "./engine-errors.js";
import { startEngineSpan, type EngineSpan } from "./engine-span.js";
import { redactText, secretsOfHeaders } from "./redact.js";
import { JsonLinesDecoder, SseDecoder, type SseFrame } from "./stream-decoder.js";

export interface RetryPolicy {
  /** Tries in all, the first included; 1 disables retries. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface EngineHttpOptions {
  /** E.g. "http://127.0.0.1:8081"; a path ("https://host/v1") prefixes every request path. */
  baseUrl: string;
  /** Sent on every request (e.g. Authorization); never logged or put in errors. */
  headers?: Record<string, string>;
  /** Extra strings to redact (API keys); sensitive values of `headers` are redacted anyway. */
  secrets?: string[];
  /** Default 5_000. */
  connectTimeoutMs?: number;
  /** From connection to response headers, default 30_000. */
  headersTimeoutMs?: number;
  /** Longest gap between body chunks while reading a body, default 60_000. */
  idleTimeoutMs?: number;
  /** Default {attempts: 3, baseDelayMs: 100, maxDelayMs: 2_000}. */
  retry?: RetryPolicy;
}

export interface GetOptions {
  /** Aborting rejects with `signal.reason` and closes the connection. */
  signal?: AbortSignal;
  /** Overrides headersTimeoutMs for each attempt of this call (a health probe wants less). */
  timeoutMs?: number;
}

export interface GetResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  text: string;
}

export interface StreamOptions {
  /** Aborting closes the connection (the engine sees it) and ends `batches` quietly. */
  signal: AbortSignal;
  format: "sse" | "jsonl";
  /** Retry (per `retry`) attempts that failed before a connection was made, so nothing was sent. */
  retryConnect?: boolean;
  /** Added to, or overriding, the client's headers for this call; sensitive values are redacted. */
  headers?: Record<string, string>;
}

export interface EngineStream<T> {
  status: number;
  headers: Record<string, string>;
  /**
   * One batch per socket chunk: every frame (or line) completed by it, never
   * an empty batch. Iterate to the end, break out (which closes the
   * connection), or abort the signal; a stream left alone holds its socket.
   * Throws WorkerFailure: TIMEOUT when the engine is silent for
   * idleTimeoutMs, RESET when the connection drops.
   */
  batches: AsyncIterable<T[]>;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 100, maxDelayMs: 2_000 };
/** Statuses of a proxy or an engine that is briefly away: worth another try of an idempotent call. */
const RETRY_STATUSES = new Set([502, 503, 504]);
/** Bodies read whole (GETs, error bodies): more means something is wrong, not a bigger answer. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_ERROR_BODY_BYTES = 64 * 1024;
/** Whole answers to a POST: a batch of embeddings is big (a 4096-float vector is some 80 kB of JSON). */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

/**
 * Delay before retrying after failed attempt number `attempt` (1-based):
 * "full jitter", uniform in [0, min(maxDelayMs, baseDelayMs * 2^(attempt-1))),
 * so replicas that failed together do not retry together.
 */
export function retryDelayMs(retry: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** Math.min(Math.max(attempt - 1, 0), 52));
  return Math.max(0, ceiling) * random();
}

export class EngineHttp {
  private readonly target: CallTarget;
  private readonly headers: Record<string, string>;
  private readonly secrets: string[];
  private readonly headersTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly retry: RetryPolicy;

  constructor(opts: EngineHttpOptions) {
    const base = new URL(opts.baseUrl);
    if (base.protocol !== "http:" && base.protocol !== "https:") throw new TypeError(`engine URL must be http(s): ${base.protocol}`);
    const secure = base.protocol === "https:";
    // No socket cap here: the sidecar admits at most its slots, and a cap below them
    // (64 was) left slots core counted as free waiting for a socket.
    const agentOptions = { keepAlive: true, maxSockets: Infinity };
    this.target = {
      origin: base.origin,
      basePath: base.pathname.replace(/\/+$/, ""),
      secure,
      agent: secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions),
      connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
    };
    this.headers = { ...opts.headers };
    this.secrets = [...(opts.secrets ?? []), ...secretsOfHeaders(opts.headers)];
    this.headersTimeoutMs = opts.headersTimeoutMs ?? 30_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.retry = { ...(opts.retry ?? DEFAULT_RETRY) };
    if (!Number.isInteger(this.retry.attempts) || this.retry.attempts < 1) throw new RangeError("retry.attempts must be an integer >= 1");
  }

  /** `text` without this client's secrets or bearer tokens: for adapters' own messages and logs. */
  redact(text: string): string {
    return redactText(text, this.secrets);
  }

  /**
   * Idempotent GET; retried with capped, jittered exponential backoff on
   * transport failures (refused, reset, timeouts) and on 502/503/504, not on
   * other statuses. Resolves for any HTTP status (the last one, once retries
   * run out); rejects WorkerFailure on a transport failure of the last attempt.
   */
  async get(path: string, opts: GetOptions = {}): Promise<GetResponse> {
    const signal = opts.signal ?? new AbortController().signal;
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw signal.reason;
      const last = attempt >= this.retry.attempts;
      try {
        const call = await sendAttempt(this.target, "GET", path, this.headers, undefined, signal, opts.timeoutMs ?? this.headersTimeoutMs);
        const text = await readBody(call, this.idleTimeoutMs, MAX_BODY_BYTES);
        const status = call.res.statusCode ?? 0;
        if (last || !RETRY_STATUSES.has(status)) return { status, headers: flatHeaders(call.res.headers), text };
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        if (last) throw failureOf({ method: "GET", path, cause: causeOf(err), secrets: this.secrets });
      }
      if (!(await waitOrAbort(retryDelayMs(this.retry, attempt), signal))) throw signal.reason;
    }
  }

  /**
   * `get` and JSON.parse. A non-2xx status rejects WorkerFailure by
   * kindOfStatus with the engine's message; a 2xx body that is not JSON
   * rejects ENGINE_ERROR.
   */
  async getJson<T>(path: string, opts: GetOptions = {}): Promise<{ status: number; body: T }> {
    const { status, text } = await this.get(path, opts);
    if (status < 200 || status > 299) throw failureOf({ method: "GET", path, status, body: text, secrets: this.secrets });
    try {
      return { status, body: JSON.parse(text) as T };
    } catch (err) {
      const cause = new Error(`invalid JSON from the engine: ${(err as Error).message}`);
      throw failureOf({ method: "GET", path, kind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR, cause, secrets: this.secrets });
    }
  }

  /**
   * POST `body` as JSON and stream the response as decoded batches. Never
   * retried once the request may have reached the engine; with
   * `retryConnect` an attempt that failed before connecting (refused,
   * unresolvable, connect timeout) is retried per `retry`. A non-2xx status
   * rejects WorkerFailure with the engine's message. Aborting `signal` before
   * the response headers rejects with `signal.reason`.
   */
  stream(path: string, body: unknown, opts: StreamOptions & { format: "sse" }): Promise<EngineStream<SseFrame>>;
  stream(path: string, body: unknown, opts: StreamOptions & { format: "jsonl" }): Promise<EngineStream<string>>;
  stream(path: string, body: unknown, opts: StreamOptions): Promise<EngineStream<SseFrame> | EngineStream<string>>;
  async stream(path: string, body: unknown, opts: StreamOptions): Promise<EngineStream<SseFrame> | EngineStream<string>> {
    const { signal } = opts;
    const { call, secrets, span } = await this.post(path, body, opts.format === "sse" ? "text/event-stream" : "application/x-ndjson", opts);
    const common = { status: call.res.statusCode ?? 0, headers: flatHeaders(call.res.headers) };
    const sent = { call, signal, path, secrets, span };
    return opts.format === "sse"
      ? { ...common, batches: this.batches(sent, new SseDecoder()) }
      : { ...common, batches: this.batches(sent, new JsonLinesDecoder()) };
  }

  /**
   * POST `body` as JSON and read the whole JSON answer (engines that answer
   * at once: embeddings, rerank). Sent, retried and failed like `stream`; a
   * 2xx body that is not JSON rejects ENGINE_ERROR. Aborting `signal` at any
   * point closes the connection (the engine sees it) and rejects with
   * `signal.reason`.
   */
  async postJson(path: string, body: unknown, opts: Omit<StreamOptions, "format">): Promise<{ status: number; body: unknown }> {
    const { signal } = opts;
    const { call, secrets, span } = await this.post(path, body, "application/json", opts);
    const status = call.res.statusCode ?? 0;
    let text: string;
    try {
      text = await readBody(call, this.idleTimeoutMs, MAX_ANSWER_BYTES);
    } catch (err) {
      // The span hears the redacted failure, never the raw cause.
      const failure: unknown = signal.aborted ? signal.reason : failureOf({ method: "POST", path, cause: err, secrets });
      span?.end({ status, error: failure });
      throw failure;
    }
    span?.end({ status });
    try {
      return { status, body: JSON.parse(text) as unknown };
    } catch (err) {
      const cause = new Error(`invalid JSON from the engine: ${(err as Error).message}`);
      throw failureOf({ method: "POST", path, kind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR, cause, secrets });
    }
  }

  /**
   * One POST up to its 2xx response headers, with its span when a traced
   * generation makes it (the caller ends it once the body is read).
   */
  private async post(
    path: string,
    body: unknown,
    accept: string,
    opts: Omit<StreamOptions, "format">,
  ): Promise<{ call: Call; secrets: string[]; span: EngineSpan | undefined }> {
    const payload = Buffer.from(JSON.stringify(body), "utf8");
    const headers: Record<string, string> = {
      ...this.headers,
      "content-type": "application/json",
      accept,
      ...opts.headers,
      "content-length": String(payload.length),
    };
    const secrets = [...this.secrets, ...secretsOfHeaders(opts.headers)];
    const span = startEngineSpan("POST", this.target.origin, this.target.basePath + path, headers);
    try {
      return { call: await this.postAttempts(path, payload, headers, secrets, opts), secrets, span };
    } catch (err) {
      span?.end({ error: err });
      throw err;
    }
  }

  /** Sends the POST: connect retries when allowed, a non-2xx status as the engine's failure. */
  private async postAttempts(
    path: string,
    payload: Buffer,
    headers: Record<string, string>,
    secrets: string[],
    opts: Omit<StreamOptions, "format">,
  ): Promise<Call> {
    const { signal } = opts;
    const attempts = opts.retryConnect ? this.retry.attempts : 1;
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw signal.reason;
      let call: Call;
      try {
        call = await sendAttempt(this.target, "POST", path, headers, payload, signal, this.headersTimeoutMs);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        const sent = err instanceof AttemptError && err.connected;
        if (sent || attempt >= attempts) throw failureOf({ method: "POST", path, cause: causeOf(err), secrets });
        if (!(await waitOrAbort(retryDelayMs(this.retry, attempt), signal))) throw signal.reason;
        continue;
      }
      const status = call.res.statusCode ?? 0;
      if (status < 200 || status > 299) {
        // The error body is the engine's explanation; without it the status alone must do.
        const text = await readBody(call, this.idleTimeoutMs, MAX_ERROR_BODY_BYTES).catch(() => undefined);
        if (signal.aborted) throw signal.reason;
        throw failureOf({ method: "POST", path, status, body: text, secrets });
      }
      return call;
    }
  }

  /** Destroys the keep-alive agent and with it every socket, idle or in use. */
  close(): void {
    this.target.agent.destroy();
  }

  private async *batches<T>(
    {
      call,
      signal,
      path,
      secrets,
      span,
    }: { call: Call; signal: AbortSignal; path: string; secrets: string[]; span: EngineSpan | undefined },
    decoder: { push(chunk: Uint8Array): T[]; end(): T[] },
  ): AsyncGenerator<T[]> {
    const chunks = call.res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    // The idle timer counts only while waiting on the engine, not while the consumer holds a batch.
    let waiting = false;
    call.arm(this.idleTimeoutMs, "no data from the engine", () => waiting);
    try {
      for (;;) {
        waiting = true;
        call.refresh();
        const next = await chunks.next();
        waiting = false;
        if (next.done) break;
        const batch = decoder.push(next.value);
        if (batch.length > 0) yield batch;
      }
      const rest = decoder.end();
      if (rest.length > 0) yield rest;
    } catch (err) {
      if (signal.aborted) return;
      const failure = failureOf({ method: "POST", path, cause: err, secrets });
      span?.end({ status: call.res.statusCode, error: failure });
      throw failure;
    } finally {
      span?.end({ status: call.res.statusCode });
      call.finish();
      // Stopped before the end (break, abort, error): closing the connection is how the engine learns to stop.
      if (!call.res.complete) call.req.destroy();
    }
  }
}
