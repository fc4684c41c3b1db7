import type { Context, Middleware } from "koa";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { bearerOf, isLoopback } from "../../contracts/runtime/api-key.js";
import type { KeyRing } from "../../contracts/runtime/auth/key-ring.js";
import { EVERY_ROLE, mayAct, roleRefusalMessage, type Principal, type Role } from "../../contracts/runtime/auth/roles.js";
import { setCallerKey } from "../call-context.js";
import { HttpError } from "../http-errors.js";

export interface AuthOptions {
  /** The keys clients may present; none required only on a loopback-only edge. */
  keys: KeyRing;
  /** Let loopback clients in without a key (identity=localhost). */
  optionalOnLoopback: boolean;
  /** Who a loopback caller without a key is: the edge calls core for it with its own key, so it may do what that key may. */
  localhost: () => Principal;
}

/** Without any key configured the edge is loopback-only and every caller is the machine's own user. */
const LOOPBACK_ONLY: Principal = { identity: "localhost", roles: EVERY_ROLE };

/**
 * `Authorization: Bearer <key>` (or `X-Api-Key: <key>`, as Anthropic's SDKs
 * send it), looked up by its sha256: missing 401, unknown 403 FORBIDDEN, a
 * worker key 403 INSUFFICIENT_ROLE (the public API needs a client or admin
 * key). Sets ctx.state.principal and ctx.state.identity (`key:<name>`,
 * `token:<fp6>` or `localhost`) for logs and rate limits, and keeps the key
 * for the calls to core (call-context.ts); it goes nowhere else. An unverified
 * header names no one: without keys, a made-up token is not an identity.
 */
export function apiKeyAuth(opts: AuthOptions): Middleware {
  return async (ctx, next) => {
    const principal = authenticate(ctx, opts);
    ctx.state.principal = principal;
    ctx.state.identity = principal.identity;
    if (!mayAct(principal, "client")) throw insufficientRole(principal, "client", "use the public API");
    await next();
  };
}

function authenticate(ctx: Context, opts: AuthOptions): Principal {
  if (!opts.keys.required) return LOOPBACK_ONLY;
  // Anthropic's SDKs send the key as X-Api-Key; every other client as a bearer token.
  const presented = bearerOf(ctx.get("Authorization") || undefined) ?? (ctx.get("X-Api-Key") || undefined);
  if (presented === undefined) {
    if (opts.optionalOnLoopback && isLoopback(ctx.request.ip)) return opts.localhost();
    ctx.set("WWW-Authenticate", 'Bearer realm="llama-orch"');
    throw HttpError.of(ErrorCode.ERROR_CODE_UNAUTHORIZED, "an API key is required: send Authorization: Bearer <key>");
  }
  const principal = opts.keys.authenticate(presented);
  if (!principal) throw HttpError.of(ErrorCode.ERROR_CODE_FORBIDDEN, "the API key is not valid");
  setCallerKey(ctx, presented);
  return principal;
}

/** Mounted on control-plane writes: only a key of `role` passes (after apiKeyAuth). */
export function requireRole(role: Role, what: string): Middleware {
  return async (ctx, next) => {
    const principal = ctx.state.principal as Principal | undefined;
    if (principal && !mayAct(principal, role)) throw insufficientRole(principal, role, what);
    await next();
  };
}

function insufficientRole(principal: Principal, role: Role, what: string): HttpError {
  return HttpError.of(ErrorCode.ERROR_CODE_INSUFFICIENT_ROLE, roleRefusalMessage(principal, role, what));
}
