// One attempt of one request to an engine: the socket's phases (connect,
// response headers, body) under a single timer, an abort that closes the
// connection, and reading a whole body. engine-http.ts decides what to send
// and whether to try again; this file only carries one attempt out.
import http from "node:http";
import https from "node:https";

/** Where and how EngineHttp sends: its origin, path prefix, agent and connect timeout. */
export interface CallTarget {
  origin: string;
  basePath: string;
  secure: boolean;
  agent: http.Agent;
  connectTimeoutMs: number;
}

/**
 * One attempt: resolves at the response headers. Rejects AttemptError,
 * which says whether a connection was made (so the request may have been
 * sent). Connect and headers timeouts share the call's one timer.
 */
export function sendAttempt(
  target: CallTarget,
  method: string,
  path: string,
  headers: Record<string, string>,
  payload: Buffer | undefined,
  signal: AbortSignal,
  headersTimeoutMs: number,
): Promise<Call> {
  return new Promise((resolve, reject) => {
    const url = new URL(target.basePath + (path.startsWith("/") ? path : `/${path}`), target.origin);
    const call = new TimedCall((target.secure ? https : http).request(url, { method, agent: target.agent, headers }), signal);
    const { req } = call;
    let connected = false;
    let reused = false;
    call.arm(target.connectTimeoutMs, "no connection");
    req.on("socket", (socket) => {
      reused = req.reusedSocket;
      const onConnect = (): void => {
        connected = true;
        call.arm(headersTimeoutMs, "no response headers");
      };
      if (socket.connecting) socket.once(target.secure ? "secureConnect" : "connect", onConnect);
      else onConnect();
    });
    req.on("error", (err) => {
      call.finish();
      reject(new AttemptError(err, connected, reused && (err as NodeJS.ErrnoException).code === "ECONNRESET"));
    });
    req.on("response", (r) => {
      call.answered(r);
      // Errors after this point reach whoever reads the body; this keeps an unread one from crashing the process.
      r.on("error", () => {});
      resolve(call);
    });
    req.end(payload);
  });
}

/** One request in flight and its single timer, re-armed per phase and refreshed per chunk. */
export interface Call {
  readonly req: http.ClientRequest;
  readonly res: http.IncomingMessage;
  /** (Re)starts the timer: after `ms`, the call fails with a timeout unless `when()` says not now. */
  arm(ms: number, what: string, when?: () => boolean): void;
  refresh(): void;
  /** Stops the timer and the abort listener. */
  finish(): void;
}

/** The Call of sendAttempt: aborting the caller's signal, or the timer running out, destroys request and response. */
class TimedCall implements Call {
  res!: http.IncomingMessage;
  private timer: NodeJS.Timeout | undefined;
  private readonly onAbort = (): void => this.kill(new Error("aborted by the caller"));

  constructor(
    readonly req: http.ClientRequest,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener("abort", this.onAbort, { once: true });
  }

  arm(ms: number, what: string, when: () => boolean = () => true): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (when()) this.kill(new EngineTimeoutError(`${what} within ${ms} ms`));
    }, ms);
  }

  refresh(): void {
    this.timer?.refresh();
  }

  finish(): void {
    clearTimeout(this.timer);
    this.signal.removeEventListener("abort", this.onAbort);
  }

  /** The response headers arrived: the phase timer stops until a reader arms its own. */
  answered(res: http.IncomingMessage): void {
    this.res = res;
    clearTimeout(this.timer);
  }

  private kill(err: Error): void {
    (this.res as http.IncomingMessage | undefined)?.destroy(err);
    this.req.destroy(err);
  }
}

/** This layer's timeouts; `code` ETIMEDOUT makes kindOfSocketError call them TIMEOUT. */
export class EngineTimeoutError extends Error {
  override readonly name = "EngineTimeoutError";
  readonly code = "ETIMEDOUT";
}

export class AttemptError extends Error {
  constructor(
    override readonly cause: unknown,
    readonly connected: boolean,
    /**
     * A kept-alive socket closed under the request before any answer: the
     * race with an engine closing idle connections (llama-server and Node
     * do after 5 s), in which the request almost always never reached it.
     */
    readonly staleSocket = false,
  ) {
    super("engine request failed");
  }
}

export function causeOf(err: unknown): unknown {
  return err instanceof AttemptError ? err.cause : err;
}

export function readBody(call: Call, idleTimeoutMs: number, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const { res } = call;
    const chunks: Buffer[] = [];
    let size = 0;
    call.arm(idleTimeoutMs, "no data from the engine");
    res.on("data", (chunk: Buffer) => {
      call.refresh();
      size += chunk.length;
      if (size > maxBytes) res.destroy(new Error(`response body over ${maxBytes} bytes`));
      else chunks.push(chunk);
    });
    res.on("end", () => {
      call.finish();
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
    res.on("error", (err) => {
      call.finish();
      reject(err);
    });
    res.on("close", () => {
      call.finish();
      if (!res.complete) reject(Object.assign(new Error("connection closed before the end of the response"), { code: "ECONNRESET" }));
    });
  });
}

export function flatHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}
