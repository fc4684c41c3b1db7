import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type {
  CapabilitiesServiceServer,
  DrainPoolRequest,
  DrainPoolResponse,
  GetCapabilitiesRequest,
  GetCapabilitiesResponse,
  GetPoolHealthRequest,
  GetPoolHealthResponse,
  ListPoolsRequest,
  ListPoolsResponse,
  PoolServiceServer,
  ReloadPoolRequest,
  ReloadPoolResponse,
} from "../../contracts/gen/llama_orch/v1/pool.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import { ModelRefError, parseModelRef } from "../../contracts/model-ref.js";
import { capabilitiesOf } from "../pools/capabilities.js";
import type { PoolReloader } from "../pools/pool-reloader.js";
import type { ReplicaRegistry } from "../registry/replica-registry.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import { respond } from "./respond.js";

const answer = <T>(callback: sendUnaryData<T>, logger: Logger, fn: () => T) => respond(callback, logger, fn);

export function poolService(scheduler: Scheduler, reloader: PoolReloader, logger: Logger): PoolServiceServer {
  return {
    getPoolHealth(call: ServerUnaryCall<GetPoolHealthRequest, GetPoolHealthResponse>, callback: sendUnaryData<GetPoolHealthResponse>) {
      answer(callback, logger, () => scheduler.poolHealth(call.request.poolId));
    },
    drainPool(call: ServerUnaryCall<DrainPoolRequest, DrainPoolResponse>, callback: sendUnaryData<DrainPoolResponse>) {
      answer(callback, logger, () => {
        const { inFlight, queued } = scheduler.drain(call.request.poolId, call.request.deadlineMs);
        return { tasksInFlight: inFlight, tasksQueued: queued };
      });
    },
    reloadPool(call: ServerUnaryCall<ReloadPoolRequest, ReloadPoolResponse>, callback: sendUnaryData<ReloadPoolResponse>) {
      answer(callback, logger, () => {
        try {
          parseModelRef(call.request.newModelRef);
        } catch (err) {
          if (err instanceof ModelRefError)
            throw OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, err.message, { field: "/new_model_ref" });
          throw err;
        }
        return reloader.start(call.request.poolId, call.request.newModelRef);
      });
    },
    listPools(_call: ServerUnaryCall<ListPoolsRequest, ListPoolsResponse>, callback: sendUnaryData<ListPoolsResponse>) {
      answer(callback, logger, () => ({ pools: scheduler.poolSummaries() }));
    },
  };
}

export function capabilitiesService(registry: ReplicaRegistry, logger: Logger): CapabilitiesServiceServer {
  return {
    getCapabilities(
      _call: ServerUnaryCall<GetCapabilitiesRequest, GetCapabilitiesResponse>,
      callback: sendUnaryData<GetCapabilitiesResponse>,
    ) {
      answer(callback, logger, () => capabilitiesOf(registry.all()));
    },
  };
}
