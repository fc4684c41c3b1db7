import type { Context, Middleware } from "koa";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { Principal } from "../../contracts/runtime/auth/roles.js";
import { HttpError } from "../http-errors.js";

export interface RateLimit {
  /** Sustained requests per second per caller; 0 turns limiting off. */
  perSecond: number;
  /** Requests a caller may make at once after being idle. */
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
  limit: RateLimit;
}

/**
 * A token bucket per caller. Refused requests get 429 ADMISSION_REJECT with
 * the exact wait until the next token.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly clock: () => number = () => performance.now()) {}

  /** Takes one token for `key` under `limit`; returns 0 when granted, else the ms until one is available. */
  take(key: string, limit: RateLimit): number {
    const now = this.clock();
    const b = this.buckets.get(key) ?? { tokens: limit.burst, at: now, limit };
    // A key whose limit changed (a reloaded keys file) keeps what it had, capped by the new burst.
    b.limit = limit;
    b.tokens = Math.min(limit.burst, b.tokens + ((now - b.at) * limit.perSecond) / 1000);
    b.at = now;
    this.buckets.set(key, b);
    if (this.buckets.size > 10_000) this.forgetFull(now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 1000) / limit.perSecond);
  }

  /** A bucket that has refilled is the same as no bucket, so forgetting it bounds memory and changes nothing. */
  private forgetFull(now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) * b.limit.perSecond) / 1000 >= b.limit.burst) this.buckets.delete(k);
  }
}

/**
 * Who is calling, for limits: the key when one was verified, else the client
 * address (the socket's, or the trusted proxy's last X-Forwarded-For hop with
 * --trust-proxy). Nothing a client merely claims (a made-up token) names a
 * bucket of its own.
 */
export function callerKey(ctx: Context): string {
  const principal = ctx.state.principal as Principal | undefined;
  return principal && principal.identity !== "localhost" ? principal.identity : `ip:${ctx.request.ip}`;
}

/** The limit that applies to the caller: its key's own, else the edge's. */
function limitOf(ctx: Context, fallback: RateLimit): RateLimit {
  return (ctx.state.principal as Principal | undefined)?.rateLimit ?? fallback;
}

export function rateLimit(fallback: RateLimit): Middleware {
  const buckets = new TokenBuckets();
  return async (ctx, next) => {
    const limit = limitOf(ctx, fallback);
    const waitMs = limit.perSecond > 0 ? buckets.take(callerKey(ctx), limit) : 0;
    if (waitMs > 0) {
      throw HttpError.of(
        ErrorCode.ERROR_CODE_ADMISSION_REJECT,
        `rate limit of ${limit.perSecond} requests/s (burst ${limit.burst}) exceeded; retry in ${waitMs} ms`,
        {
          retriable: true,
          retryAfterMs: waitMs,
          policyLabel: "rate-limit",
        },
      );
    }
    await next();
  };
}
