import test from "ava";
import { credentials, type ServiceError } from "@grpc/grpc-js";
import {
  CatalogModel,
  CatalogModelState,
  CatalogServiceClient,
  type CreateModelResponse,
  type GetModelResponse,
  type SetModelStateResponse,
} from "../../contracts/gen/llama_orch/v1/catalog.js";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { errorDetailOf } from "../../contracts/runtime/error-status.js";
import { TestSystem } from "../support/system.js";

// Core's catalog called over gRPC directly, with no edge (and no OpenAPI check)
// in front: the typed messages hold the field types, core still holds the rules.

let sys: TestSystem;
let catalog: CatalogServiceClient;

test.before(async () => {
  sys = await TestSystem.start({ workers: [] });
  catalog = new CatalogServiceClient(sys.coreAddress, credentials.createInsecure());
});
test.after.always(async () => {
  catalog?.close();
  await sys?.stop();
});

const DIGEST = `sha256:${"0".repeat(64)}`;

type Callback<Res> = (err: ServiceError | null, res: Res) => void;

function unary<Res>(start: (cb: Callback<Res>) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => start((err, res) => (err ? reject(err) : resolve(res))));
}

async function refused(t: import("ava").ExecutionContext, promise: Promise<unknown>): Promise<{ code: ErrorCode; field: string; message: string }> {
  const err = await t.throwsAsync<ServiceError>(promise);
  const detail = errorDetailOf(err!);
  return { code: detail?.code ?? ErrorCode.ERROR_CODE_UNSPECIFIED, field: detail?.field ?? "", message: detail?.message ?? "" };
}

const createModel = (model: CatalogModel | undefined) => unary<CreateModelResponse>((cb) => catalog.createModel({ model }, cb));
const create = (model: Partial<CatalogModel>) => createModel(CatalogModel.fromPartial(model));

test("a registration answers with the entry as the catalog keeps it, state and times set by core", async (t) => {
  const { model } = await create({ id: "grpc-ok", digest: DIGEST, sourceUrl: "hf:org/repo", tags: ["a"], state: CatalogModelState.CATALOG_MODEL_STATE_RETIRED, createdMs: 1 });
  t.is(model!.id, "grpc-ok");
  t.is(model!.state, CatalogModelState.CATALOG_MODEL_STATE_ACTIVE, "a client cannot set the state");
  t.true(model!.createdMs > 1);
  t.deepEqual(model!.tags, ["a"]);
  const got = await unary<GetModelResponse>((cb) => catalog.getModel({ id: "grpc-ok" }, cb));
  t.deepEqual(got.model, model);
});

test("ids that could leave the catalog root, malformed digests and unparseable sources are INVALID_PARAMS naming the field", async (t) => {
  for (const id of ["../../etc", "a/b", "", ".hidden"]) {
    t.like(await refused(t, create({ id, digest: DIGEST })), { code: ErrorCode.ERROR_CODE_INVALID_PARAMS, field: "/id" });
  }
  t.like(await refused(t, create({ id: "d", digest: "sha256:XYZ" })), { code: ErrorCode.ERROR_CODE_INVALID_PARAMS, field: "/digest" });
  const badRef = await refused(t, create({ id: "s", digest: DIGEST, sourceUrl: "ftp://x/y" }));
  t.like(badRef, { code: ErrorCode.ERROR_CODE_INVALID_PARAMS, field: "/source_url" });
  t.regex(badRef.message, /unsupported scheme "ftp:"/);
  t.like(await refused(t, createModel(undefined)), { field: "/id" });
});

test("a state that is neither Active nor Retired is INVALID_PARAMS on /state; an unknown id is NOT_FOUND", async (t) => {
  await create({ id: "grpc-state", digest: DIGEST });
  const setState = (state: CatalogModelState, id = "grpc-state") => unary<SetModelStateResponse>((cb) => catalog.setModelState({ id, state }, cb));
  t.like(await refused(t, setState(CatalogModelState.CATALOG_MODEL_STATE_UNSPECIFIED)), { code: ErrorCode.ERROR_CODE_INVALID_PARAMS, field: "/state" });
  t.like(await refused(t, setState(7 as CatalogModelState)), { code: ErrorCode.ERROR_CODE_INVALID_PARAMS, field: "/state" });
  t.like(await refused(t, setState(CatalogModelState.CATALOG_MODEL_STATE_RETIRED, "nope")), { code: ErrorCode.ERROR_CODE_NOT_FOUND });
  const retired = await setState(CatalogModelState.CATALOG_MODEL_STATE_RETIRED);
  t.deepEqual(retired, { status: "accepted", poolsDraining: 0, state: CatalogModelState.CATALOG_MODEL_STATE_RETIRED });
});
