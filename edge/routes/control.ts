import type Router from "@koa/router";
import type { Context } from "koa";
import type { Artifact, ArtifactRef, CreateArtifactResponse, GetArtifactResponse } from "../../contracts/gen/llama_orch/v1/artifact.js";
import type {
  CatalogModel,
  CreateModelResponse,
  GetModelResponse,
  SetModelStateRequest,
  SetModelStateResponse,
  VerifyModelResponse,
} from "../../contracts/gen/llama_orch/v1/catalog.js";
import type {
  DrainPoolResponse,
  GetCapabilitiesResponse,
  GetPoolHealthResponse,
  ReloadPoolResponse,
} from "../../contracts/gen/llama_orch/v1/pool.js";
import { apiVersion, requestBodyValidator, type FieldProblem } from "../../contracts/openapi.js";
import { publicJson, type JsonObject } from "../../contracts/public-json.js";
import { callContext } from "../call-context.js";
import type { CoreClient } from "../core-client.js";
import { publicEngineName } from "../http-errors.js";
import { decodeBody, ensureValid } from "../validation.js";
import type { RateLimit } from "../middleware/rate-limit.js";
import { requireRole } from "../middleware/api-key-auth.js";
import { readJsonBody } from "../middleware/json-body.js";

interface ControlDeps {
  core: CoreClient;
  bodyLimitBytes: number;
  jsonMaxDepth: number;
  rateLimit: RateLimit;
}

/** Reads the body and checks it against the operation's OpenAPI schema. */
async function validBody<T>(ctx: Context, deps: ControlDeps, validate: (b: unknown) => FieldProblem | null): Promise<T> {
  const body = await readJsonBody(ctx, deps);
  ensureValid(validate(body));
  return body as T;
}

/** The control plane: pools, capabilities, catalog, artifacts. Handlers only translate; writes need an admin key. */
export function mountControlRoutes(router: Router, deps: ControlDeps): void {
  mountPoolRoutes(router, deps);
  mountCatalogRoutes(router, deps);
  mountArtifactRoutes(router, deps);
}

const poolHealthJson = publicJson<GetPoolHealthResponse>("llama_orch.v1.GetPoolHealthResponse");
const capabilitiesJson = publicJson<GetCapabilitiesResponse>("llama_orch.v1.GetCapabilitiesResponse");

function mountPoolRoutes(router: Router, deps: ControlDeps): void {
  const { core } = deps;
  const drainBody = requestBodyValidator("drainPool");
  const reloadBody = requestBodyValidator("reloadPool");

  router.get("/v1/pools/:id/health", async (ctx) => {
    const poolId = ctx.params.id!;
    const h = await core.call<GetPoolHealthResponse>(callContext(ctx), (md, o, cb) => core.pools.getPoolHealth({ poolId }, md, o, cb));
    ctx.body = poolHealthJson.encode(h);
  });

  router.post("/v1/pools/:id/drain", requireRole("admin", "drain pools"), async (ctx) => {
    const body = await validBody<{ deadline_ms: number }>(ctx, deps, drainBody);
    const poolId = ctx.params.id!;
    const r = await core.call<DrainPoolResponse>(callContext(ctx), (md, o, cb) =>
      core.pools.drainPool({ poolId, deadlineMs: body.deadline_ms }, md, o, cb),
    );
    ctx.status = 202;
    ctx.body = { status: "draining", tasks_in_flight: r.tasksInFlight, tasks_queued: r.tasksQueued, deadline_ms: body.deadline_ms };
  });

  router.post("/v1/pools/:id/reload", requireRole("admin", "reload pools"), async (ctx) => {
    const body = await validBody<{ new_model_ref: string }>(ctx, deps, reloadBody);
    const poolId = ctx.params.id!;
    const r = await core.call<ReloadPoolResponse>(callContext(ctx), (md, o, cb) =>
      core.pools.reloadPool({ poolId, newModelRef: body.new_model_ref }, md, o, cb),
    );
    ctx.status = 202;
    ctx.body = { status: "reloading", previous_model_ref: r.previousModelRef, new_model_ref: body.new_model_ref };
  });

  router.get("/v1/capabilities", async (ctx) => {
    const c = await core.call<GetCapabilitiesResponse>(callContext(ctx), (md, o, cb) => core.capabilities.getCapabilities({}, md, o, cb));
    const { perSecond, burst } = deps.rateLimit;
    const rateLimits = perSecond > 0 ? { tasks_per_second: perSecond, burst } : {};
    // Engines the public API has no name for stay out of it.
    const json = capabilitiesJson.encode({ ...c, engines: c.engines.filter((e) => publicEngineName(e.engine) !== undefined) });
    ctx.body = {
      api_version: apiVersion(),
      ...json,
      engines: (json.engines as JsonObject[]).map((e) => ({ ...e, rate_limits: rateLimits })),
    };
  });
}

const catalogModelJson = publicJson<CatalogModel>("llama_orch.v1.CatalogModel");
const setStateRequestJson = publicJson<SetModelStateRequest>("llama_orch.v1.SetModelStateRequest");
const setStateResponseJson = publicJson<SetModelStateResponse>("llama_orch.v1.SetModelStateResponse");
const verifyResponseJson = publicJson<VerifyModelResponse>("llama_orch.v1.VerifyModelResponse");

function mountCatalogRoutes(router: Router, deps: ControlDeps): void {
  const { core } = deps;
  const modelBody = requestBodyValidator("createCatalogModel");
  const stateBody = requestBodyValidator("setCatalogModelState");

  router.post("/v1/catalog/models", requireRole("admin", "add catalog models"), async (ctx) => {
    const model = decodeBody(catalogModelJson, await validBody(ctx, deps, modelBody));
    const r = await core.call<CreateModelResponse>(callContext(ctx), (md, o, cb) => core.catalog.createModel({ model }, md, o, cb));
    ctx.status = 201;
    ctx.body = catalogModelJson.encode(r.model!);
  });

  router.get("/v1/catalog/models/:id", async (ctx) => {
    const id = ctx.params.id!;
    const r = await core.call<GetModelResponse>(callContext(ctx), (md, o, cb) => core.catalog.getModel({ id }, md, o, cb));
    ctx.body = catalogModelJson.encode(r.model!);
  });

  router.delete("/v1/catalog/models/:id", requireRole("admin", "delete catalog models"), async (ctx) => {
    const id = ctx.params.id!;
    await core.call(callContext(ctx), (md, o, cb) => core.catalog.deleteModel({ id }, md, o, cb));
    ctx.status = 204;
  });

  router.post("/v1/catalog/models/:id/verify", requireRole("admin", "verify catalog models"), async (ctx) => {
    const id = ctx.params.id!;
    const r = await core.call<VerifyModelResponse>(callContext(ctx), (md, o, cb) => core.catalog.verifyModel({ id }, md, o, cb));
    ctx.status = 202;
    ctx.body = verifyResponseJson.encode(r);
  });

  router.post("/v1/catalog/models/:id/state", requireRole("admin", "change catalog model states"), async (ctx) => {
    const body = await validBody<object>(ctx, deps, stateBody);
    const request = decodeBody(setStateRequestJson, { ...body, id: ctx.params.id! });
    const r = await core.call<SetModelStateResponse>(callContext(ctx), (md, o, cb) => core.catalog.setModelState(request, md, o, cb));
    ctx.status = 202;
    ctx.body = setStateResponseJson.encode(r);
  });
}

const artifactJson = publicJson<Artifact>("llama_orch.v1.Artifact");
const artifactRefJson = publicJson<ArtifactRef>("llama_orch.v1.ArtifactRef");

function mountArtifactRoutes(router: Router, deps: ControlDeps): void {
  const { core } = deps;
  const artifactBody = requestBodyValidator("createArtifact");

  router.post("/v1/artifacts", requireRole("admin", "store artifacts"), async (ctx) => {
    const artifact = decodeBody(artifactJson, await validBody(ctx, deps, artifactBody));
    const r = await core.call<CreateArtifactResponse>(callContext(ctx), (md, o, cb) =>
      core.artifacts.createArtifact({ artifact }, md, o, cb),
    );
    ctx.status = 201;
    ctx.body = artifactRefJson.encode(r.ref!);
  });

  router.get("/v1/artifacts/:id", async (ctx) => {
    const id = ctx.params.id!;
    const r = await core.call<GetArtifactResponse>(callContext(ctx), (md, o, cb) => core.artifacts.getArtifact({ id }, md, o, cb));
    ctx.body = artifactJson.encode(r.artifact!);
  });
}
