import type Router from "@koa/router";
import type { Context } from "koa";
import type { ListModelsResponse } from "../../contracts/gen/llama_orch/v1/catalog.js";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { ListPoolsResponse } from "../../contracts/gen/llama_orch/v1/pool.js";
import { TaskState, type ListTasksResponse } from "../../contracts/gen/llama_orch/v1/task.js";
import { queryParamValidator, type FieldProblem } from "../../contracts/openapi.js";
import { publicEnumNames } from "../../contracts/public-enum-names.js";
import { publicJson } from "../../contracts/public-json.js";
import { callContext } from "../call-context.js";
import type { CoreClient } from "../core-client.js";
import { HttpError } from "../http-errors.js";
import { ensureValid } from "../validation.js";

const poolListJson = publicJson<ListPoolsResponse>("llama_orch.v1.ListPoolsResponse");
const modelListJson = publicJson<ListModelsResponse>("llama_orch.v1.ListModelsResponse");
const taskListJson = publicJson<ListTasksResponse>("llama_orch.v1.ListTasksResponse");
const taskStates = publicEnumNames("llama_orch.v1.TaskState");

type QueryValidator = (raw: string) => { value: unknown; problem: FieldProblem | null };

/** The lists an operator reads: pools, catalog entries, unfinished tasks. Handlers only translate. */
export function mountListingRoutes(router: Router, { core }: { core: CoreClient }): void {
  const models = pagingParams("listCatalogModels");
  const tasks = pagingParams("listTasks");
  const validState = queryParamValidator("listTasks", "state");

  router.get("/v1/pools", async (ctx) => {
    const r = await core.call<ListPoolsResponse>(callContext(ctx), (md, o, cb) => core.pools.listPools({}, md, o, cb));
    ctx.body = poolListJson.encode(r);
  });

  router.get("/v1/catalog/models", async (ctx) => {
    const page = models(ctx);
    const r = await core.call<ListModelsResponse>(callContext(ctx), (md, o, cb) => core.catalog.listModels(page, md, o, cb));
    ctx.body = modelListJson.encode(r);
  });

  router.get("/v1/tasks", async (ctx) => {
    const page = tasks(ctx);
    const name = queryValue(ctx, "state", validState);
    const state = name === undefined ? TaskState.TASK_STATE_UNSPECIFIED : (taskStates.value(name as string) as TaskState);
    const r = await core.call<ListTasksResponse>(callContext(ctx), (md, o, cb) => core.tasks.listTasks({ ...page, state }, md, o, cb));
    ctx.body = taskListJson.encode(r);
  });
}

/** `limit` and `page_token` of an operation, as the page_size and page_token core's lists take. */
function pagingParams(operationId: string): (ctx: Context) => { pageSize: number; pageToken: string } {
  const validLimit = queryParamValidator(operationId, "limit");
  const validToken = queryParamValidator(operationId, "page_token");
  return (ctx) => ({
    pageSize: (queryValue(ctx, "limit", validLimit) as number | undefined) ?? 0,
    pageToken: (queryValue(ctx, "page_token", validToken) as string | undefined) ?? "",
  });
}

/** A query parameter given at most once, checked against its schema; undefined when absent. */
function queryValue(ctx: Context, name: string, validate: QueryValidator): unknown {
  const raw = ctx.query[name];
  if (raw === undefined) return undefined;
  if (Array.isArray(raw)) throw HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `${name} must be given once`, { field: name });
  const { value, problem } = validate(raw);
  ensureValid(problem);
  return value;
}
