import type { Middleware } from "koa";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { bearerOf, identityOf, isLoopback, keyMatches } from "../../contracts/runtime/api-key.js";
import { HttpError } from "../http-errors.js";

export interface AuthOptions {
  /** The API key clients must present; undefined only on a loopback-only edge. */
  apiKey: string | undefined;
  /** Let loopback clients in without a key (identity=localhost). */
  optionalOnLoopback: boolean;
}

/**
 * `Authorization: Bearer <key>` (or `X-Api-Key: <key>`, as Anthropic's SDKs
 * send it), compared in constant time: missing 401,
 * wrong 403. Sets ctx.state.identity to `localhost` or `token:<fp6>` for
 * logs and rate limits; the key itself goes nowhere.
 */
export function apiKeyAuth(opts: AuthOptions): Middleware {
  return async (ctx, next) => {
    // Anthropic's SDKs send the key as X-Api-Key; every other client as a bearer token.
    const presented = bearerOf(ctx.get("Authorization") || undefined) ?? (ctx.get("X-Api-Key") || undefined);
    const local = isLoopback(ctx.request.ip);
    if (!opts.apiKey) {
      ctx.state.identity = presented ? identityOf(presented) : "localhost";
    } else if (presented === undefined) {
      if (!(opts.optionalOnLoopback && local)) {
        ctx.set("WWW-Authenticate", 'Bearer realm="llama-orch"');
        throw HttpError.of(ErrorCode.ERROR_CODE_UNAUTHORIZED, "an API key is required: send Authorization: Bearer <key>");
      }
      ctx.state.identity = "localhost";
    } else if (keyMatches(presented, opts.apiKey)) {
      ctx.state.identity = identityOf(presented);
    } else {
      throw HttpError.of(ErrorCode.ERROR_CODE_FORBIDDEN, "the API key is not valid");
    }
    await next();
  };
}
