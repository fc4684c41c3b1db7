import type { Context, Middleware } from "koa";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { HttpError } from "../http-errors.js";

export interface RateLimit {
  /** Sustained requests per second per caller; 0 turns limiting off. */
  perSecond: number;
  /** Requests a caller may make at once after being idle. */
  burst: number;
}

/**
 * A token bucket per caller: the API key's fingerprint when one is sent,
 * else the client address. Refused requests get 429 ADMISSION_REJECT with the
 * exact wait until the next token.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly limit: RateLimit,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Takes one token for `key`; returns 0 when granted, else the ms until one is available. */
  take(key: string): number {
    const now = this.clock();
    const { perSecond, burst } = this.limit;
    const b = this.buckets.get(key) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) * perSecond) / 1000);
    b.at = now;
    this.buckets.set(key, b);
    if (this.buckets.size > 10_000) this.forgetFull(now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 1000) / perSecond);
  }

  /** A bucket that has refilled is the same as no bucket, so forgetting it bounds memory and changes nothing. */
  private forgetFull(now: number): void {
    const { perSecond, burst } = this.limit;
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) * perSecond) / 1000 >= burst) this.buckets.delete(k);
  }
}

/** Who is calling, for limits: the authenticated identity when it names a key, else the client address. */
export function callerKey(ctx: Context): string {
  const identity = ctx.state.identity as string | undefined;
  return identity?.startsWith("token:") ? identity : `ip:${ctx.request.ip}`;
}

export function rateLimit(limit: RateLimit): Middleware {
  const buckets = new TokenBuckets(limit);
  return async (ctx, next) => {
    const waitMs = buckets.take(callerKey(ctx));
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
