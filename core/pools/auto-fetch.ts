import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { CreateTaskRequest } from "../../contracts/gen/llama_orch/v1/task.js";
import { engines } from "../../contracts/enums.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import { ModelRefError, parseModelRef } from "../../contracts/model-ref.js";
import type { ReplicaRegistry } from "../registry/replica-registry.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import type { PoolReloader } from "./pool-reloader.js";

/**
 * What to tell a client whose model no pool serves, while pools of its engine
 * exist. With auto-fetch off (the default), an advisory error saying how to
 * get the model loaded, at once rather than a task that waits forever. With
 * it on, an idle pool of that engine starts loading the model and the client
 * is told to retry (POOL_UNREADY) once it is Ready.
 */
export function unservedModelAdvice(opts: { autoFetch: boolean; scheduler: Scheduler; registry: ReplicaRegistry; reloader: PoolReloader }) {
  return (request: CreateTaskRequest): OrchError | undefined => {
    const sameEngine = opts.registry.all().filter((r) => r.registration.engine === request.engine && !r.registration.servesAnyModel);
    const pools = [...new Set(sameEngine.map((r) => r.poolId))].sort();
    if (pools.length === 0) return undefined;
    const engine = engines.name(request.engine);
    if (!opts.autoFetch) {
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
    const idle = pools.find((p) => opts.scheduler.isIdle(p));
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
    opts.reloader.start(idle, request.modelRef);
    return OrchError.of(ErrorCode.ERROR_CODE_POOL_UNREADY, `fetching model ${request.modelRef} into pool ${idle}; retry once it is ready`, {
      engine: request.engine,
      retriable: true,
      retryAfterMs: 2_000,
    });
  };
}
