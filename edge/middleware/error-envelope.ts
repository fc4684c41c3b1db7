import type { Middleware } from "koa";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { HttpError } from "../http-errors.js";

/**
 * Turns every failure into the JSON error envelope with its status, including
 * the router's own 404/405. Only unexpected errors are logged at error level,
 * and their details never reach the client.
 */
export function errorEnvelope(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined && ctx.respond !== false) {
        throw HttpError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `no route for ${ctx.method} ${ctx.path}`);
      }
      if (ctx.status === 405 && ctx.respond !== false) {
        throw HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `method ${ctx.method} is not allowed on ${ctx.path}`);
      }
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
      const envelope = httpError.envelope();
      ctx.status = httpError.status;
      if (httpError.status === 429 && envelope.retry_after_ms !== undefined) {
        ctx.set("Retry-After", String(Math.max(1, Math.ceil(envelope.retry_after_ms / 1000))));
        ctx.set("X-Backoff-Ms", String(envelope.retry_after_ms));
      }
      ctx.body = envelope;
    }
  };
}
