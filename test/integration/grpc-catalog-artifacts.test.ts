import test, { type ExecutionContext } from "ava";
import { credentials, type ServiceError } from "@grpc/grpc-js";
import {
  CatalogModel,
  CatalogModelState,
  CatalogServiceClient,
  type CreateModelResponse,
  type GetModelResponse,
  type SetModelStateResponse,
} from "../../contracts/gen/llama_orch/v1/catalog.js";
import {
  Artifact,
  ArtifactKind,
  ArtifactServiceClient,
  type CreateArtifactResponse,
  type GetArtifactResponse,
} from "../../contracts/gen/llama_orch/v1/artifact.js";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { errorDetailOf } from "../../contracts/runtime/error-status.js";
import { TestSystem } from "../support/system.js";

// Core's catalog and artifact store called over gRPC directly, with no edge (and no OpenAPI check)
// in front: the typed messages hold the field types, core still holds the rules.

let sys: TestSystem;
let catalog: CatalogServiceClient;
let artifacts: ArtifactServiceClient;

test.before(async () => {
  sys = await TestSystem.start({ workers: [] });
  catalog = new CatalogServiceClient(sys.coreAddress, credentials.createInsecure());
  artifacts = new ArtifactServiceClient(sys.coreAddress, credentials.createInsecure());
});
test.after.always(async () => {
  catalog?.close();
  artifacts?.close();
  await sys?.stop();
});

const DIGEST = `sha256:${"0".repeat(64)}`;

type Callback<Res> = (err: ServiceError | null, res: Res) => void;

function unary<Res>(start: (cb: Callback<Res>) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => start((err, res) => (err ? reject(err) : resolve(res))));
}

async function refused(t: ExecutionContext, promise: Promise<unknown>): Promise<{ code: ErrorCode; field: string; message: string }> {
  const err = await t.throwsAsync<ServiceError>(promise);
  const detail = errorDetailOf(err);
  return { code: detail?.code ?? ErrorCode.ERROR_CODE_UNSPECIFIED, field: detail?.field ?? "", message: detail?.message ?? "" };
}

const createModel = (model: CatalogModel | undefined) => unary<CreateModelResponse>((cb) => catalog.createModel({ model }, cb));
const create = (model: Partial<CatalogModel>) => createModel(CatalogModel.fromPartial(model));

test("a registration answers with the entry as the catalog keeps it, state and times set by core", async (t) => {
  const { model } = await create({
    id: "grpc-ok",
    digest: DIGEST,
    sourceUrl: "hf:org/repo",
    tags: ["a"],
    state: CatalogModelState.CATALOG_MODEL_STATE_RETIRED,
    createdMs: 1,
  });
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
  const setState = (state: CatalogModelState, id = "grpc-state") =>
    unary<SetModelStateResponse>((cb) => catalog.setModelState({ id, state }, cb));
  t.like(await refused(t, setState(CatalogModelState.CATALOG_MODEL_STATE_UNSPECIFIED)), {
    code: ErrorCode.ERROR_CODE_INVALID_PARAMS,
    field: "/state",
  });
  t.like(await refused(t, setState(7 as CatalogModelState)), { code: ErrorCode.ERROR_CODE_INVALID_PARAMS, field: "/state" });
  t.like(await refused(t, setState(CatalogModelState.CATALOG_MODEL_STATE_RETIRED, "nope")), { code: ErrorCode.ERROR_CODE_NOT_FOUND });
  const retired = await setState(CatalogModelState.CATALOG_MODEL_STATE_RETIRED);
  t.deepEqual(retired, { status: "accepted", poolsDraining: 0, state: CatalogModelState.CATALOG_MODEL_STATE_RETIRED });
});

const store = (artifact: Partial<Artifact>) =>
  unary<CreateArtifactResponse>((cb) => artifacts.createArtifact({ artifact: Artifact.fromPartial(artifact) }, cb));

test("an artifact stored over gRPC answers with its ref, and reads back with lineage; server fields sent by the client are ignored", async (t) => {
  const parent = await store({ kind: ArtifactKind.ARTIFACT_KIND_PLAN, content: { step: 1 }, tags: [] });
  t.true(parent.created);
  t.like(parent.ref, { kind: ArtifactKind.ARTIFACT_KIND_PLAN, tags: [] });
  const child = await store({
    kind: ArtifactKind.ARTIFACT_KIND_DIFF,
    content: { step: 2 },
    parent: parent.ref!.id,
    id: "f".repeat(64),
    createdMs: 1,
    lineage: ["x"],
  });
  t.not(child.ref!.id, "f".repeat(64));
  const got = await unary<GetArtifactResponse>((cb) => artifacts.getArtifact({ id: child.ref!.id }, cb));
  t.like(got.artifact, {
    id: child.ref!.id,
    digest: `sha256:${child.ref!.id}`,
    parent: parent.ref!.id,
    lineage: [parent.ref!.id],
    tags: undefined,
  });
  t.true(got.artifact!.createdMs > 1);
});

test("an artifact without a known kind or content, with a non-string tag or a malformed parent is INVALID_PARAMS naming the field", async (t) => {
  const field = async (artifact: Partial<Artifact>) => (await refused(t, store(artifact))).field;
  t.is(await field({ content: {} }), "/kind");
  t.is(await field({ kind: 9 as ArtifactKind, content: {} }), "/kind");
  t.is(await field({ kind: ArtifactKind.ARTIFACT_KIND_PLAN }), "/content");
  t.is(await field({ kind: ArtifactKind.ARTIFACT_KIND_PLAN, content: {}, tags: ["ok", 1] }), "/tags/1");
  t.is(await field({ kind: ArtifactKind.ARTIFACT_KIND_PLAN, content: {}, parent: "../../etc/passwd" }), "/parent");
  t.like(
    await refused(
      t,
      unary((cb) => artifacts.createArtifact({ artifact: undefined }, cb)),
    ),
    { code: ErrorCode.ERROR_CODE_INVALID_PARAMS, field: "/kind" },
  );
});
