import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { ErrorCode } from "../contracts/gen/llama_orch/v1/common.js";
import type { Logger } from "../contracts/runtime/logger.js";
import { HttpError } from "./http-errors.js";
import type { EdgeMetrics } from "./metrics.js";

/** What the edge's HTTP server refuses before any request handler runs. */
export interface ClientErrorLimits {
  maxHeaderBytes: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

/** What Node's `clientError` passes: its parser's code (`HPE_*`), or a timeout's. */
type ClientError = Error & { code?: string; reason?: string };

/**
 * Node's HTTP parser errors and request timeouts (the server's `clientError`)
 * answered like every other error: the JSON envelope, an X-Correlation-Id
 * (minted: a request that did not parse has none of its own), and the status
 * Node itself would pick (431 for headers too large, 413 for chunk extensions,
 * 408 for a request that did not arrive in time, else 400), instead of Node's
 * bare status line. The connection closes after it, as Node's does.
 */
export function answerClientError(
  limits: ClientErrorLimits,
  logger: Logger,
  metrics: EdgeMetrics,
): (err: ClientError, socket: Duplex) => void {
  return (err, socket) => {
    // A reset connection has no one to answer; a response already under way cannot be replaced.
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const { status, error } = refusalOf(err, limits);
    const correlationId = randomUUID();
    const body = JSON.stringify(error.envelope());
    socket.end(
      [
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Bad Request"}`,
        "Content-Type: application/json; charset=utf-8",
        `Content-Length: ${Buffer.byteLength(body)}`,
        `X-Correlation-Id: ${correlationId}`,
        "Connection: close",
        "",
        body,
      ].join("\r\n"),
    );
    socket.once("finish", () => socket.destroy());
    metrics.httpRequests.inc({ method: "UNPARSED", route: "unmatched", status: String(status) });
    // The raw bytes stay out of the log: they may hold an API key.
    logger.info(
      { event: "bad_http_request", correlation_id: correlationId, code: err.code, status },
      `refused a request Node's HTTP parser could not take (${err.code ?? err.message}): ${error.message}`,
    );
  };
}

function refusalOf(err: ClientError, limits: ClientErrorLimits): { status: number; error: HttpError } {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      return {
        status: 431,
        error: HttpError.of(ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE, `the request's headers exceed ${limits.maxHeaderBytes} bytes`),
      };
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return { status: 413, error: HttpError.of(ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE, "the request's chunk extensions are too large") };
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return {
        status: 408,
        error: HttpError.of(
          ErrorCode.ERROR_CODE_INVALID_PARAMS,
          `the request did not arrive in time (headers within ${limits.headersTimeoutMs} ms, the whole request within ${limits.requestTimeoutMs} ms)`,
          { retriable: true },
        ),
      };
    default: {
      // llhttp's reason names what is wrong ("Duplicate Content-Length", "Invalid header value char"), and only that.
      const reason = typeof err.reason === "string" && err.reason !== "" ? err.reason : "malformed request";
      return { status: 400, error: HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `the request is not valid HTTP/1.1: ${reason}`) };
    }
  }
}
