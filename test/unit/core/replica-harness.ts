import { Engine } from "../../../contracts/gen/llama_orch/v1/common.js";
import { RegisterRequest } from "../../../contracts/gen/llama_orch/v1/registry.js";
import { Replica } from "../../../core/registry/replica.js";
import { quietLogger } from "../../support/log-capture.js";

/** A replica that is never started: no watch stream opens, nothing dials its address. */
export function unstartedReplica(slotsTotal = 2): Replica {
  const registration = RegisterRequest.fromPartial({
    address: "127.0.0.1:9",
    poolId: "p",
    replicaId: "p-r1",
    engine: Engine.ENGINE_LLAMACPP,
    modelRef: "m",
    slotsTotal,
  });
  return new Replica(registration, quietLogger);
}
