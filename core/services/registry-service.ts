import { status as GrpcStatus, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from "@grpc/grpc-js";
import { Engine, ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type {
  ListReplicasRequest,
  ListReplicasResponse,
  RegisterRequest,
  RegisterResponse,
  RegistryServiceServer,
  ReplicaStatus,
} from "../../contracts/gen/llama_orch/v1/registry.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import type { Replica } from "../registry/replica.js";
import { ReplicaIdTaken, type ReplicaRegistry } from "../registry/replica-registry.js";

/**
 * RegistryService: a sidecar's Register stream is its lease. Core answers once
 * with `accepted` and keeps the stream open; when it ends (the sidecar died,
 * stopped, or lost the network) the replica leaves placement.
 */
export function registryService(
  registry: ReplicaRegistry,
  coreInstanceId: string,
  /** Called once a registration is in, with what the sidecar says it kept while core was away. */
  onRegistered: (replica: Replica, request: RegisterRequest) => void = () => {},
): RegistryServiceServer {
  return {
    register: (call) => register(registry, coreInstanceId, call, onRegistered),
    listReplicas(_call: ServerUnaryCall<ListReplicasRequest, ListReplicasResponse>, callback: sendUnaryData<ListReplicasResponse>) {
      callback(null, { replicas: registry.all().map(replicaStatus) });
    },
  };
}

/** Adds the replica (unless a live sidecar holds its id) and holds its lease open until the stream or the replica goes. */
function register(
  registry: ReplicaRegistry,
  coreInstanceId: string,
  call: ServerWritableStream<RegisterRequest, RegisterResponse>,
  onRegistered: (replica: Replica, request: RegisterRequest) => void,
): void {
  const missing = missingField(call.request);
  if (missing) {
    call.emit(
      "error",
      OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `registration needs ${missing}`, { field: `/${missing}` }).toServiceError(),
    );
    return;
  }
  let gone = false;
  registry
    .claim(call.request, () => !gone && !call.cancelled)
    .then(
      (replica) => {
        if (!replica) return;
        // Before the replica is ready for placement, so what it kept gets its slots first.
        onRegistered(replica, call.request);
        holdLease(registry, coreInstanceId, call, replica, () => (gone = true));
      },
      (err: Error) => {
        const code = err instanceof ReplicaIdTaken ? GrpcStatus.ALREADY_EXISTS : GrpcStatus.INTERNAL;
        call.emit("error", { code, details: err.message });
      },
    );
  // Until the claim is decided, a registrant that leaves must not be registered afterwards.
  call.once("cancelled", () => (gone = true));
}

function holdLease(
  registry: ReplicaRegistry,
  coreInstanceId: string,
  call: ServerWritableStream<RegisterRequest, RegisterResponse>,
  replica: Replica,
  markGone: () => void,
): void {
  let gone = false;
  const leave = (reason: string) => {
    if (gone) return;
    gone = true;
    markGone();
    registry.remove(replica, reason);
    call.end();
  };
  // The claim may have been decided after the registrant left (its 'cancelled' already fired).
  if (call.cancelled) {
    leave("registration stream closed by the sidecar");
    return;
  }
  call.on("cancelled", () => leave("registration stream closed by the sidecar"));
  call.on("error", (e: Error) => leave(`registration stream failed: ${e.message}`));
  call.on("close", () => leave("registration stream closed"));
  // A replaced or removed replica ends its own stream so the sidecar re-registers.
  registry.on("removed", function onRemoved(removed) {
    if (removed !== replica) return;
    registry.off("removed", onRemoved);
    if (!gone) {
      gone = true;
      markGone();
      call.end();
    }
  });
  call.write({ kind: { $case: "accepted", accepted: { coreInstanceId, acceptedAtMs: Date.now() } } });
}

/** The first required registration field that is missing, or "" when none is. */
function missingField(r: RegisterRequest): string {
  return !r.address
    ? "address"
    : !r.poolId
      ? "pool_id"
      : !r.replicaId
        ? "replica_id"
        : r.engine === Engine.ENGINE_UNSPECIFIED
          ? "engine"
          : "";
}

function replicaStatus(r: Replica): ReplicaStatus {
  return {
    poolId: r.poolId,
    replicaId: r.id,
    address: r.registration.address,
    engine: r.registration.engine,
    engineVersion: r.engineVersion,
    modelRef: r.modelRef,
    live: r.health.live,
    // Ready for placement: the engine says so and core has read what it serves since.
    ready: r.isReady,
    slotsTotal: r.slotsTotal,
    slotsFree: r.freeSlots,
    lastError: r.health.lastError,
    workloads: r.info?.workloads ?? [],
    adapter: r.info?.adapter ?? "",
  };
}
