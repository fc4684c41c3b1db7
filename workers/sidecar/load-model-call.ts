import { status as GrpcStatus, type ServerUnaryCall, type StatusObject } from "@grpc/grpc-js";
import { WorkerErrorKind, type LoadModelRequest, type LoadModelResponse } from "../../contracts/gen/llama_orch/v1/worker.js";
import { engines } from "../../contracts/enums.js";
import { correlationIdOf } from "../../contracts/runtime/metadata.js";
import { publicText } from "../../contracts/runtime/public-text.js";
import { traceContextFromMetadata, traceIdOf } from "../../contracts/runtime/trace-context.js";
import { WorkerFailure, workerErrorKinds } from "../engine-adapter.js";
import { isExpectedDigest, loadRefusal } from "./load-refusal.js";
import type { WorkerServiceDeps } from "./worker-service.js";

/** WorkerService.LoadModel: switches the engine's model, logging the start and the outcome; a refusal is public text. */
export async function serveLoadModel(
  deps: Pick<WorkerServiceDeps, "adapter" | "identity" | "logger">,
  call: ServerUnaryCall<LoadModelRequest, LoadModelResponse>,
  shuttingDown: boolean,
): Promise<LoadModelResponse> {
  const { adapter, identity } = deps;
  const { modelRef, expectedDigest } = call.request;
  if (!modelRef) throw status(GrpcStatus.INVALID_ARGUMENT, "model_ref is required");
  if (expectedDigest && !isExpectedDigest(expectedDigest))
    throw status(GrpcStatus.INVALID_ARGUMENT, 'expected_digest must be "sha256:<64 hex digits>" or empty');
  if (!adapter.loadModel) throw status(GrpcStatus.UNIMPLEMENTED, "this engine cannot switch models");
  if (shuttingDown) throw status(GrpcStatus.UNAVAILABLE, "the worker is shutting down");

  const before = adapter.info();
  const previous = before.modelRef;
  const log = deps.logger.child({
    engine: engines.name(before.engine),
    model_ref: modelRef,
    previous_model_ref: previous,
    pool_id: identity.poolId,
    replica_id: identity.replicaId,
    correlation_id: correlationIdOf(call.metadata),
    trace_id: traceIdOf(traceContextFromMetadata(call.metadata)),
  });
  log.info(
    { event: "model_load_start", expected_digest: expectedDigest || undefined },
    `loading model ${modelRef} (replacing ${previous})`,
  );
  const t0 = performance.now();
  try {
    await adapter.loadModel(modelRef, expectedDigest ? { expectedDigest } : undefined);
  } catch (err) {
    const durationMs = Math.round(performance.now() - t0);
    const classified = err instanceof WorkerFailure;
    const message = classified ? err.message : `unexpected adapter failure: ${err instanceof Error ? err.message : String(err)}`;
    const serving = adapter.info().modelRef;
    log.warn(
      {
        event: "model_load_end",
        outcome: "failed",
        duration_ms: durationMs,
        serving_model_ref: serving,
        error_kind: classified ? workerErrorKinds.name(err.kind) : workerErrorKinds.name(WorkerErrorKind.WORKER_ERROR_KIND_INTERNAL),
        error_message: message,
        // Stack traces only for failures the adapter did not classify: those are bugs.
        err: classified ? undefined : err,
      },
      `failed to switch to model ${modelRef} after ${durationMs} ms, still serving ${serving}: ${message}`,
    );
    // Pool health shows it to clients: the log line above keeps the detail.
    throw loadRefusal(publicText(message), err);
  }
  const info = adapter.info();
  const durationMs = Math.round(performance.now() - t0);
  log.info(
    {
      event: "model_load_end",
      outcome: "loaded",
      duration_ms: durationMs,
      model_digest: info.modelDigest,
      engine_version: info.engineVersion,
    },
    `now serving model ${info.modelRef} (loaded in ${durationMs} ms)`,
  );
  return { modelRef: info.modelRef, modelDigest: info.modelDigest, engineVersion: info.engineVersion };
}

/** An Error, as only Errors are thrown; grpc-js answers with its code and details. */
export function status(code: GrpcStatus, details: string): Error & Partial<StatusObject> {
  return Object.assign(new Error(details), { code, details });
}
