import { ErrorCode, type LoadProgress } from "../../contracts/gen/llama_orch/v1/common.js";
import type { CreateTaskRequest } from "../../contracts/gen/llama_orch/v1/task.js";
import { engines } from "../../contracts/enums.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import { ModelRefError, parseModelRef } from "../../contracts/model-ref.js";
import type { ReplicaRegistry } from "../registry/replica-registry.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import type { PoolReloader } from "./pool-reloader.js";

/** How soon a client is told to try again while its model is being fetched. */
const FETCHING_RETRY_MS = 2_000;
/**
 * After a fetch of a model failed, how long tasks for it are told why instead
 * of starting the same failing download (a gated repo, a wrong digest) again.
 */
const FAILED_FETCH_PAUSE_MS = 30_000;

interface AutoFetchDeps {
  autoFetch: boolean;
  scheduler: Scheduler;
  registry: ReplicaRegistry;
  reloader: PoolReloader;
  clock?: () => number;
}

/**
 * What to tell a client whose model no pool serves, while pools of its engine
 * exist. With auto-fetch off (the default), an advisory error saying how to
 * get the model loaded, at once rather than a task that waits forever. With
 * it on, an idle pool of that engine starts loading the model (downloading
 * it first when it is not in the model cache) and the client is told to
 * retry (POOL_UNREADY) once it is Ready; while it loads, retries hear how far
 * it got; a fetch that just failed is reported rather than started again.
 */
export function unservedModelAdvice(deps: AutoFetchDeps) {
  return (request: CreateTaskRequest): OrchError | undefined => {
    const sameEngine = deps.registry.all().filter((r) => r.registration.engine === request.engine && !r.registration.servesAnyModel);
    const pools = [...new Set(sameEngine.map((r) => r.poolId))].sort();
    if (pools.length === 0) return undefined;
    const engine = engines.name(request.engine);
    if (!deps.autoFetch) {
      return OrchError.of(
        ErrorCode.ERROR_CODE_POOL_UNAVAILABLE,
        `model ${request.modelRef} is not loaded in any ${engine} pool and auto-fetch is off; load it with POST /v1/pools/{id}/reload (pools: ${pools.join(", ")}) or start core with --auto-fetch`,
        { engine: request.engine, field: "/model_ref" },
      );
    }
    try {
      parseModelRef(request.modelRef);
    } catch (err) {
      if (err instanceof ModelRefError) return OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, err.message, { field: "/model_ref" });
      throw err;
    }
    return fetchAdvice(deps, request, pools, engine);
  };
}

/** Auto-fetch on: already loading, failed just now, no idle pool, or a reload started now. */
function fetchAdvice(deps: AutoFetchDeps, request: CreateTaskRequest, pools: string[], engine: string): OrchError {
  const loadingInto = deps.reloader.poolLoading(request.modelRef);
  if (loadingInto !== undefined) return fetching(request, loadingInto, deps.scheduler.poolHealth(loadingInto).metrics?.reloadProgress);
  const now = (deps.clock ?? Date.now)();
  const failure = deps.reloader.recentFailure(request.modelRef, FAILED_FETCH_PAUSE_MS, now);
  if (failure !== undefined) {
    const retryAfterMs = Math.max(1, failure.at + FAILED_FETCH_PAUSE_MS - now);
    return OrchError.of(
      ErrorCode.ERROR_CODE_POOL_UNAVAILABLE,
      `fetching model ${request.modelRef} failed ${Math.round((now - failure.at) / 1000)} s ago: ${failure.error}; it is tried again on a task after ${Math.ceil(retryAfterMs / 1000)} s`,
      { engine: request.engine, retriable: true, retryAfterMs },
    );
  }
  const idle = pools.find((p) => deps.scheduler.isIdle(p));
  if (!idle) {
    return OrchError.of(
      ErrorCode.ERROR_CODE_POOL_UNAVAILABLE,
      `model ${request.modelRef} is not loaded and every ${engine} pool is busy; retry later`,
      {
        engine: request.engine,
        retriable: true,
        retryAfterMs: 5_000,
      },
    );
  }
  deps.reloader.start(idle, request.modelRef);
  return fetching(request, idle, undefined);
}

function fetching(request: CreateTaskRequest, poolId: string, progress: LoadProgress | undefined): OrchError {
  return OrchError.of(
    ErrorCode.ERROR_CODE_POOL_UNREADY,
    `fetching model ${request.modelRef} into pool ${poolId}${progress ? ` (${howFar(progress)})` : ""}; retry once it is ready`,
    { engine: request.engine, retriable: true, retryAfterMs: FETCHING_RETRY_MS },
  );
}

/** "downloading, 45% of 4.1 GB", "loading". */
function howFar(p: LoadProgress): string {
  if (p.bytesTotal === undefined || p.bytesTotal <= 0) return p.phase;
  const percent = Math.floor((100 * p.bytesDone) / p.bytesTotal);
  return `${p.phase}, ${percent}% of ${(p.bytesTotal / 1e9).toFixed(1)} GB`;
}
