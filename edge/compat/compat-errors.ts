import type { Context, Middleware } from "koa";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { HttpError } from "../http-errors.js";
import { logCause } from "../middleware/error-envelope.js";

// Each compatible API answers errors in its own shape, so its SDK raises its
// own typed error (BadRequestError, RateLimitError, ...) with our message:
//   OpenAI     {"error": {"message", "type", "param", "code"}}
//   Anthropic  {"type": "error", "error": {"type", "message"}}
// `code` is llama-orch's ErrorKind (INVALID_PARAMS, QUEUE_FULL_DROP_LRU, ...),
// so clients can branch on it as on the native envelope's.

export type CompatApi = "openai" | "anthropic";

/** A failure as both shapes need it. */
export interface Failure {
  status: number;
  code: string;
  message: string;
  /** Where in the request the problem is, as the client's API names it. */
  param?: string;
  retriable: boolean;
  retryAfterMs?: number;
}

/** A task that someone else cancelled (an operator, or POST /v1/tasks/{id}/cancel) while this request waited for it. */
export class TaskCanceledError extends Error {
  constructor(readonly taskId: string) {
    super(`task ${taskId} was canceled before it finished`);
  }
}

const ANTHROPIC_PATHS = /^\/v1\/messages(\/count_tokens)?\/?$/;
const OPENAI_PATHS = /^\/v1\/(chat\/completions|completions|embeddings|models(\/[^/]+)?|rerank)\/?$/;

export function compatApiOf(path: string): CompatApi | undefined {
  if (ANTHROPIC_PATHS.test(path)) return "anthropic";
  if (OPENAI_PATHS.test(path)) return "openai";
  return undefined;
}

/**
 * On the compatible APIs' paths, every error (auth, rate limit, validation,
 * core's refusals) is answered in that API's shape; other paths are left to
 * the native error envelope.
 */
export function compatErrors(logger: Logger): Middleware {
  return async (ctx, next) => {
    const api = compatApiOf(ctx.path);
    if (!api) {
      await next();
      return;
    }
    try {
      await next();
    } catch (err) {
      if (ctx.headerSent || ctx.respond === false) {
        logger.warn({ err, correlation_id: ctx.state.correlationId }, "error after the response started");
        return;
      }
      const failure = failureOf(err, ctx.state.compatParams as ParamNames | undefined);
      if (failure.status === 500 && !(err instanceof HttpError)) {
        logger.error({ err, correlation_id: ctx.state.correlationId, path: ctx.path }, "unexpected error");
      }
      if (err instanceof HttpError) logCause(logger, ctx, err);
      ctx.status = failure.status;
      ctx.set(retryHeaders(failure));
      ctx.body = api === "openai" ? openAiErrorBody(failure) : anthropicErrorBody(failure);
    }
  };
}

/** Request field (a JSON pointer into the task, or a header name) → the client API's name for it. */
export type ParamNames = Readonly<Record<string, string>>;

/** Tells the error middleware how this endpoint's request fields are called in its API. */
export function useParamNames(ctx: Context, names: ParamNames): void {
  ctx.state.compatParams = names;
}

export function failureOf(err: unknown, names: ParamNames = {}): Failure {
  if (err instanceof TaskCanceledError) return { status: 499, code: "CANCELED", message: err.message, retriable: false };
  const e =
    err instanceof HttpError
      ? err
      : HttpError.of(ErrorCode.ERROR_CODE_INTERNAL, "internal error; see the server log for this correlation id");
  const envelope = e.envelope();
  const field = envelope.field;
  const param = field === undefined ? undefined : (names[field] ?? paramOfPointer(field));
  return {
    status: e.status,
    code: envelope.code,
    message: e.message,
    param,
    retriable: envelope.retriable === true,
    retryAfterMs: envelope.retry_after_ms,
  };
}

/** "/messages/0/role" → "messages[0].role"; a header name stays as it is. */
function paramOfPointer(field: string): string {
  if (!field.startsWith("/")) return field;
  return field
    .slice(1)
    .split("/")
    .map((t, i) => (/^\d+$/.test(t) ? `[${t}]` : i === 0 ? t : `.${t}`))
    .join("");
}

/**
 * What the official SDKs read before retrying: `retry-after-ms` (exact) and
 * `Retry-After` (seconds) when waiting helps, and `x-should-retry`, which
 * overrides their status-based guess (so a 503 that retrying cannot fix is
 * not retried, and a retriable refusal always is).
 */
export function retryHeaders(f: Failure): Record<string, string> {
  const h: Record<string, string> = { "x-should-retry": String(f.retriable) };
  if (f.retryAfterMs !== undefined && f.retriable) {
    h["retry-after-ms"] = String(f.retryAfterMs);
    h["Retry-After"] = String(Math.max(1, Math.ceil(f.retryAfterMs / 1000)));
  }
  return h;
}

const OPENAI_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "invalid_request_error",
  429: "rate_limit_error",
  499: "canceled",
};

export function openAiErrorBody(f: Failure): { error: { message: string; type: string; param: string | null; code: string } } {
  const type = OPENAI_TYPES[f.status] ?? (f.status === 503 ? "unavailable_error" : "server_error");
  return { error: { message: f.message, type, param: f.param ?? null, code: f.code } };
}

const ANTHROPIC_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  503: "overloaded_error",
  504: "timeout_error",
};

export function anthropicErrorBody(f: Failure): { type: "error"; error: { type: string; message: string } } {
  return { type: "error", error: { type: ANTHROPIC_TYPES[f.status] ?? "api_error", message: f.message } };
}
