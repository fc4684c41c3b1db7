import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type {
  CatalogServiceServer,
  CreateModelRequest,
  CreateModelResponse,
  DeleteModelRequest,
  DeleteModelResponse,
  GetModelRequest,
  GetModelResponse,
  SetModelStateRequest,
  SetModelStateResponse,
  VerifyModelRequest,
  VerifyModelResponse,
} from "../../contracts/gen/llama_orch/v1/catalog.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import { CatalogError, type CatalogEntry, type CatalogStore, type ModelState } from "../catalog/catalog-store.js";
import { normalizeRegistration } from "../catalog/catalog-entry.js";
import { verifyEntry } from "../catalog/verify.js";
import type { CoreMetrics } from "../metrics.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import { respond } from "./respond.js";

/** Catalog failures as typed errors: unknown ids 404, bad input 400 naming the field. */
function typed(err: unknown): unknown {
  if (!(err instanceof CatalogError)) return err;
  if (err.kind === "not_found") return OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, err.message);
  return OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, err.message, { field: err.field ?? "" });
}

/**
 * CatalogService over the durable store: CRUD, verification (digest checked
 * by streaming sha256 when the artifact is local; missing signatures or SBOM
 * only warn) and lifecycle state (retiring drains the pools serving the model).
 */
export function catalogService(deps: { store: CatalogStore; scheduler: Scheduler; metrics: CoreMetrics; logger: Logger; baseDir: string }): CatalogServiceServer {
  const { store, scheduler, metrics, logger } = deps;
  const answer = <T>(callback: sendUnaryData<T>, work: () => Promise<T>) => respond(callback, logger, work, typed);
  const publishState = (e: CatalogEntry) => {
    for (const s of ["Active", "Retired"] as ModelState[]) metrics.modelState.set({ model_id: e.id, state: s }, e.state === s ? 1 : 0);
  };
  for (const e of store.list()) publishState(e);

  return {
    createModel(call: ServerUnaryCall<CreateModelRequest, CreateModelResponse>, callback: sendUnaryData<CreateModelResponse>) {
      answer(callback, async () => {
        const input = normalizeRegistration(call.request.model ?? {});
        if (store.get(input.id)) throw OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `model ${input.id} is already in the catalog`, { field: "/id" });
        const entry = await store.create(input);
        publishState(entry);
        logger.info({ event: "catalog_created", model_id: entry.id }, `catalog: added ${entry.id}`);
        return { model: entry as unknown as Record<string, unknown> };
      });
    },

    getModel(call: ServerUnaryCall<GetModelRequest, GetModelResponse>, callback: sendUnaryData<GetModelResponse>) {
      answer(callback, async () => {
        const entry = store.get(call.request.id);
        if (!entry) throw OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `no model ${call.request.id} in the catalog`);
        return { model: entry as unknown as Record<string, unknown> };
      });
    },

    deleteModel(call: ServerUnaryCall<DeleteModelRequest, DeleteModelResponse>, callback: sendUnaryData<DeleteModelResponse>) {
      answer(callback, async () => {
        const id = call.request.id;
        if (!(await store.delete(id))) throw OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `no model ${id} in the catalog`);
        for (const s of ["Active", "Retired"]) metrics.modelState.remove({ model_id: id, state: s });
        logger.info({ event: "catalog_deleted", model_id: id }, `catalog: removed ${id} and its local cache`);
        return {};
      });
    },

    verifyModel(call: ServerUnaryCall<VerifyModelRequest, VerifyModelResponse>, callback: sendUnaryData<VerifyModelResponse>) {
      answer(callback, async () => {
        const entry = store.get(call.request.id);
        if (!entry) throw OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `no model ${call.request.id} in the catalog`);
        const started = await store.recordVerification(entry.id, { status: "pending", checked_ms: Date.now(), warnings: [] });
        // Hashing a model can take minutes: answer now, record the result on the entry when done.
        void verifyEntry(started, { baseDir: deps.baseDir, modelDir: store.modelDir(entry.id) })
          .then(async (result) => {
            const { reason, ...verification } = result;
            await store.recordVerification(entry.id, verification);
            const outcome = result.status === "passed" ? "pass" : result.status === "failed" ? "fail" : "skipped";
            metrics.catalogVerifications.inc({ result: outcome, reason, engine: "" });
            logger.info(
              { event: "catalog_verified", model_id: entry.id, result: result.status, reason, warnings: result.warnings },
              `catalog: ${entry.id} verification ${result.status} (${reason})${result.warnings.length ? `; warnings: ${result.warnings.join("; ")}` : ""}`,
            );
          })
          .catch((err: Error) => logger.error({ err, model_id: entry.id }, `catalog: verifying ${entry.id} failed`));
        return { status: "started" };
      });
    },

    setModelState(call: ServerUnaryCall<SetModelStateRequest, SetModelStateResponse>, callback: sendUnaryData<SetModelStateResponse>) {
      answer(callback, async () => {
        const { id, state } = call.request;
        if (state !== "Active" && state !== "Retired") throw OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `state must be Active or Retired, got ${state}`, { field: "/state" });
        const entry = await store.setState(id, state, call.request.deadlineMs);
        publishState(entry);
        let poolsDraining = 0;
        if (state === "Retired") {
          for (const ref of new Set([entry.id, entry.source_url].filter((r): r is string => !!r))) poolsDraining += scheduler.drainPoolsServing(ref, call.request.deadlineMs ?? 0);
        }
        logger.info({ event: "catalog_state", model_id: id, state, pools_draining: poolsDraining }, `catalog: ${id} is now ${state}`);
        return { status: "accepted", poolsDraining };
      });
    },
  };
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
    if (entry.state === "Retired") {
      return OrchError.of(ErrorCode.ERROR_CODE_MODEL_DEPRECATED, `model ${entry.id} is retired and takes no new tasks; use another model`, { field: "/model_ref" });
    }
    if (entry.verification?.status === "failed") {
      return OrchError.of(ErrorCode.ERROR_CODE_UNTRUSTED_ARTIFACT, `model ${entry.id} failed verification: ${entry.verification.error ?? "digest mismatch"}`, { field: "/model_ref" });
    }
    return undefined;
  };
}
