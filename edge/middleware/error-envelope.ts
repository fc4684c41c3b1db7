import type { Context, Middleware } from "koa";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { HttpError } from "../http-errors.js";

/**
 * Turns every failure into the JSON error envelope with its status, including
 * the router's own 404, 405 and 501. Only unexpected errors are logged at error level,
 * and their details never reach the client.
 */
export function errorEnvelope(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      const miss = ctx.respond === false ? undefined : routerMiss(ctx);
      if (miss) throw miss;
    } catch (err) {
      if (ctx.headerSent || ctx.respond === false) {
        logger.warn({ err, correlation_id: ctx.state.correlationId }, "error after the response started");
        return;
      }
      const httpError =
        err instanceof HttpError
          ? err
          : HttpError.of(ErrorCode.ERROR_CODE_INTERNAL, "internal error; see the server log for this correlation id");
      if (!(err instanceof HttpError)) {
        logger.error({ err, correlation_id: ctx.state.correlationId, path: ctx.path }, "unexpected error");
      }
      logCause(logger, ctx, httpError);
      const envelope = httpError.envelope();
      ctx.status = httpError.status;
      // Backpressure (429) and a retriable 503 (unreachable core, shutting down) say when to come back.
      if ((httpError.status === 429 || (httpError.status === 503 && envelope.retriable)) && envelope.retry_after_ms !== undefined) {
        ctx.set("Retry-After", String(Math.max(1, Math.ceil(envelope.retry_after_ms / 1000))));
        ctx.set("X-Backoff-Ms", String(envelope.retry_after_ms));
      }
      ctx.body = envelope;
    }
  };
}

/** What stood behind an answer the client got in public words (core unreachable: the address, the socket error). */
export function logCause(logger: Logger, ctx: Context, err: HttpError): void {
  const detail = err.internalDetail;
  if (detail === undefined) return;
  logger.warn(
    { event: "request_failed", correlation_id: ctx.state.correlationId, path: ctx.path, status: err.status, detail },
    `${ctx.method} ${ctx.path} answered ${err.status}: ${err.message} (${detail})`,
  );
}

/**
 * What the router left unanswered: no route (404), or a path served only with
 * other methods. koa-router says 405 for a method it knows and 501 for one it
 * does not (TRACE, PROPFIND); both are 405 here, keeping the router's Allow.
 */
function routerMiss(ctx: Context): HttpError | undefined {
  const wrongMethod = (ctx.status === 405 || ctx.status === 501) && ctx.response.get("Allow") !== "";
  if (wrongMethod) {
    return HttpError.of(
      ErrorCode.ERROR_CODE_METHOD_NOT_ALLOWED,
      `method ${ctx.method} is not allowed on ${ctx.path}; allowed: ${ctx.response.get("Allow")}`,
    );
  }
  if ((ctx.status === 404 && ctx.body === undefined) || ctx.status === 501) {
    return HttpError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `no route for ${ctx.method} ${ctx.path}`);
  }
  return undefined;
}
