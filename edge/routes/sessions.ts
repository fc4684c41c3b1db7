import type Router from "@koa/router";
import { pathParamValidator } from "../../contracts/openapi.js";
import type { CoreClient } from "../core-client.js";
import { callContext } from "../call-context.js";
import type { GetSessionResponse } from "../../contracts/gen/llama_orch/v1/session.js";
import { ensureValid } from "../validation.js";

/** GET and DELETE /v1/sessions/{id}. */
export function mountSessionRoutes(router: Router, deps: { core: CoreClient }): void {
  const validGetId = pathParamValidator("getSession", "id");
  const validDeleteId = pathParamValidator("deleteSession", "id");

  router.get("/v1/sessions/:id", async (ctx) => {
    const id = ctx.params.id!;
    ensureValid(validGetId(id));
    const s = await deps.core.call<GetSessionResponse>(callContext(ctx), (md, o, cb) =>
      deps.core.sessions.getSession({ sessionId: id.toLowerCase() }, md, o, cb),
    );
    const b = s.budgets;
    ctx.body = {
      ttl_ms_remaining: s.ttlMsRemaining,
      turns: s.turns,
      kv_bytes: s.kvBytes,
      kv_warmth: s.kvWarmth,
      tokens_budget_remaining: b?.tokensRemaining,
      time_budget_remaining_ms: b?.timeRemainingMs,
      cost_budget_remaining: b?.costRemaining,
    };
  });

  router.delete("/v1/sessions/:id", async (ctx) => {
    const id = ctx.params.id!;
    ensureValid(validDeleteId(id));
    await deps.core.call(callContext(ctx), (md, o, cb) => deps.core.sessions.deleteSession({ sessionId: id.toLowerCase() }, md, o, cb));
    ctx.status = 204;
  });
}
