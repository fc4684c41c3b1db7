import type Router from "@koa/router";
import { engines, workloads } from "../../contracts/enums.js";
import { callContext } from "../call-context.js";
import type { ListedModel } from "./model-directory.js";
import type { CompatDeps } from "./task-call.js";

/** `created` of every listed model: when this edge started (models have no creation date of their own here). */
const STARTED = Math.floor(Date.now() / 1000);

/** GET /v1/models and /v1/models/{id}: the names clients may use, from the config and what ready replicas serve. */
export function mountOpenAiModels(router: Router, deps: CompatDeps): void {
  router.get("/v1/models", async (ctx) => {
    const models = await deps.models.list(callContext(ctx));
    ctx.body = { object: "list", data: models.map(modelJson) };
  });

  router.get("/v1/models/:id", async (ctx) => {
    ctx.state.compatParams = { "/model": "model" };
    ctx.body = modelJson(await deps.models.get(callContext(ctx), ctx.params.id!));
  });
}

/** OpenAI's Model object, plus what llama-orch knows of it (extra members the SDKs pass through). */
function modelJson(m: ListedModel) {
  return {
    id: m.id,
    object: "model",
    created: STARTED,
    owned_by: "llama-orch",
    engine: engines.name(m.engine),
    model_ref: m.modelRef,
    ctx_max: m.ctxMax,
    workloads: m.workloads.map((w) => workloads.name(w)),
  };
}
