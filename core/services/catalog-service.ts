import type { sendUnaryData } from "@grpc/grpc-js";
import { ErrorCode, type LoadProgress } from "../../contracts/gen/llama_orch/v1/common.js";
import {
  CatalogModel,
  CatalogModelState,
  Verification,
  VerificationStatus,
  type CatalogServiceServer,
  type CreateModelRequest,
  type CreateModelResponse,
  type SetModelStateRequest,
  type SetModelStateResponse,
} from "../../contracts/gen/llama_orch/v1/catalog.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import { publicEnumNames } from "../../contracts/public-enum-names.js";
import { CatalogError, type CatalogStore } from "../catalog/catalog-store.js";
import { isModelState, registration, stateName } from "../catalog/catalog-model.js";
import { assertReadableSource, verifyEntry } from "../catalog/verify.js";
import type { ModelRoots } from "../catalog/model-roots.js";
import { VerifyProgress } from "../catalog/verify-progress.js";
import type { CoreMetrics } from "../metrics.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import { NO_LABEL_VALUE } from "../scheduler/task-labels.js";
import { pageOf } from "./paging.js";
import { respond } from "./respond.js";

const { CATALOG_MODEL_STATE_ACTIVE: ACTIVE, CATALOG_MODEL_STATE_RETIRED: RETIRED } = CatalogModelState;
const MODEL_STATES = [ACTIVE, RETIRED];

/** Catalog failures as typed errors: unknown ids 404, bad input 400 naming the field. */
function typed(err: unknown): unknown {
  if (!(err instanceof CatalogError)) return err;
  if (err.kind === "not_found") return OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, err.message);
  return OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, err.message, { field: err.field ?? "" });
}

interface CatalogDeps {
  store: CatalogStore;
  /** The running verifications' progress, shown on the entries they verify. */
  progress?: VerifyProgress;
  scheduler: Scheduler;
  metrics: CoreMetrics;
  logger: Logger;
  baseDir: string;
  /** The sidecars' model cache, where verify finds hf: and https:// sources they fetched. */
  modelCache?: { root: string; hubEndpoint: string };
  /** What verify may read: --model-roots and the model cache. */
  roots: ModelRoots;
}

const notFound = (id: string) => OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `no model ${id} in the catalog`);

/**
 * CatalogService over the durable store: CRUD, a paged listing, verification
 * (digest checked by streaming sha256 when the artifact is local or in the
 * sidecars' model cache; missing signatures or SBOM only warn) and lifecycle
 * state (retiring drains the pools serving the model).
 */
export function catalogService(given: CatalogDeps): CatalogServiceServer {
  const deps = { ...given, progress: given.progress ?? new VerifyProgress() };
  const { store, metrics, logger, progress } = deps;
  const answer = <T>(callback: sendUnaryData<T>, work: () => T | Promise<T>) => respond(callback, logger, work, typed);
  for (const e of store.list()) publishState(metrics, e);

  return {
    createModel: (call, callback) => answer(callback, () => createModel(deps, call.request)),
    getModel: (call, callback) =>
      answer(callback, () => {
        const entry = store.get(call.request.id);
        if (!entry) throw notFound(call.request.id);
        return { model: progress.overlay(entry) };
      }),
    deleteModel: (call, callback) =>
      answer(callback, async () => {
        const id = call.request.id;
        if (!(await store.delete(id))) throw notFound(id);
        for (const s of MODEL_STATES) metrics.modelState.remove({ model_id: id, state: stateName(s) });
        logger.info({ event: "catalog_deleted", model_id: id }, `catalog: removed ${id} and its local cache`);
        return {};
      }),
    verifyModel: (call, callback) =>
      answer(callback, async () => {
        const entry = store.get(call.request.id);
        if (!entry) throw notFound(call.request.id);
        await assertReadableSource(entry, deps);
        await startVerification(deps, entry);
        return { status: "started" };
      }),
    setModelState: (call, callback) => answer(callback, () => setModelState(deps, call.request)),
    listModels: (call, callback) =>
      answer(callback, () => {
        const page = pageOf(store.list(), (m) => m.id, "catalog-models", call.request);
        return { models: page.items.map((m) => progress.overlay(m)), nextPageToken: page.nextPageToken };
      }),
  };
}

function publishState(metrics: CoreMetrics, e: CatalogModel): void {
  for (const s of MODEL_STATES) metrics.modelState.set({ model_id: e.id, state: stateName(s) }, e.state === s ? 1 : 0);
}

async function createModel(deps: CatalogDeps, request: CreateModelRequest): Promise<CreateModelResponse> {
  const input = registration(request.model ?? CatalogModel.fromPartial({}));
  if (deps.store.get(input.id))
    throw OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `model ${input.id} is already in the catalog`, { field: "/id" });
  const entry = await deps.store.create(input);
  publishState(deps.metrics, entry);
  deps.logger.info({ event: "catalog_created", model_id: entry.id }, `catalog: added ${entry.id}`);
  return { model: entry };
}

const statusName = (s: VerificationStatus) => publicEnumNames("llama_orch.v1.VerificationStatus").name(s) ?? String(s);
const reasonName = (r: Verification["reason"]) =>
  r === undefined ? "" : (publicEnumNames("llama_orch.v1.VerificationReason").name(r) ?? String(r));

/** Records a pending verification now; hashing a model can take minutes, so the outcome is recorded when done. */
async function startVerification(deps: CatalogDeps & { progress: VerifyProgress }, entry: CatalogModel): Promise<void> {
  const { store, metrics, logger, progress } = deps;
  const started = await store.recordVerification(
    entry.id,
    Verification.fromPartial({ status: VerificationStatus.VERIFICATION_STATUS_PENDING, checkedMs: Date.now() }),
  );
  const onProgress = (p: LoadProgress) => progress.report(entry.id, p);
  const where = { baseDir: deps.baseDir, roots: deps.roots, modelDir: store.modelDir(entry.id), modelCache: deps.modelCache };
  void verifyEntry(started, { ...where, onProgress })
    .then(async (result) => {
      await store.recordVerification(entry.id, result);
      progress.ended(entry.id);
      const status = statusName(result.status);
      const reason = reasonName(result.reason);
      const outcome = status === "passed" ? "pass" : status === "failed" ? "fail" : "skipped";
      // The catalog hashes the bytes on disk itself; no engine is involved (a load's digest check labels its engine).
      metrics.catalogVerifications.inc({ result: outcome, reason: reason || NO_LABEL_VALUE, engine: NO_LABEL_VALUE });
      logger.info(
        { event: "catalog_verified", model_id: entry.id, result: status, reason, warnings: result.warnings },
        `catalog: ${entry.id} verification ${status} (${reason})${result.warnings.length ? `; warnings: ${result.warnings.join("; ")}` : ""}`,
      );
    })
    .catch((err: Error) => {
      progress.ended(entry.id);
      logger.error({ err, model_id: entry.id }, `catalog: verifying ${entry.id} failed`);
    });
}

async function setModelState(deps: CatalogDeps, request: SetModelStateRequest): Promise<SetModelStateResponse> {
  const { id, state, deadlineMs } = request;
  if (!isModelState(state))
    throw OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `state must be Active or Retired, got ${stateName(state)}`, {
      field: "/state",
    });
  const entry = await deps.store.setState(id, state, deadlineMs);
  publishState(deps.metrics, entry);
  let poolsDraining = 0;
  if (state === RETIRED) {
    for (const ref of new Set([entry.id, entry.sourceUrl].filter((r): r is string => !!r)))
      poolsDraining += deps.scheduler.drainPoolsServing(ref, deadlineMs ?? 0);
  }
  const name = stateName(state);
  deps.logger.info({ event: "catalog_state", model_id: id, state: name, pools_draining: poolsDraining }, `catalog: ${id} is now ${name}`);
  return { status: "accepted", poolsDraining, state: entry.state };
}

/**
 * The catalog's word at admission: a Retired model gets MODEL_DEPRECATED, one
 * whose verification failed gets UNTRUSTED_ARTIFACT. A model the catalog does
 * not know is not its business.
 */
export function catalogAdmissionCheck(store: CatalogStore): (modelRef: string) => OrchError | undefined {
  return (modelRef) => {
    const entry = store.lookup(modelRef);
    if (!entry) return undefined;
    if (entry.state === RETIRED) {
      return OrchError.of(ErrorCode.ERROR_CODE_MODEL_DEPRECATED, `model ${entry.id} is retired and takes no new tasks; use another model`, {
        field: "/model_ref",
      });
    }
    if (entry.verification?.status === VerificationStatus.VERIFICATION_STATUS_FAILED) {
      return OrchError.of(
        ErrorCode.ERROR_CODE_UNTRUSTED_ARTIFACT,
        `model ${entry.id} failed verification: ${entry.verification.error ?? "digest mismatch"}`,
        { field: "/model_ref" },
      );
    }
    return undefined;
  };
}
