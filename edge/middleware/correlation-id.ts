import { randomUUID } from "node:crypto";
import type { Middleware } from "koa";

const HEADER = "X-Correlation-Id";
/** Visible ASCII only, bounded: anything else is replaced rather than echoed. */
const ACCEPTABLE = /^[\x21-\x7e]{1,128}$/;

/** Echoes the caller's X-Correlation-Id (or mints a UUIDv4) on every response. */
export function correlationId(): Middleware {
  return async (ctx, next) => {
    const given = ctx.get(HEADER);
    const id = ACCEPTABLE.test(given) ? given : randomUUID();
    ctx.state.correlationId = id;
    ctx.set(HEADER, id);
    await next();
  };
}
