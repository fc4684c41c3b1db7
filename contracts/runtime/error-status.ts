import { Metadata, status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import type { Any } from "../gen/google/protobuf/any.js";
import { Status } from "../gen/google/rpc/status.js";
import { BadRequest, ErrorInfo, RetryInfo } from "../gen/google/rpc/error_details.js";
import {
  ErrorCode,
  engineFromJSON,
  engineToJSON,
  errorCodeFromJSON,
  errorCodeToJSON,
  Engine,
  type ErrorDetail,
} from "../gen/llama_orch/v1/common.js";

/**
 * The standard trailer for a failed call's google.rpc.Status. Putting our
 * error there, not in a trailer of our own, is what lets grpcurl and
 * `buf curl` print its reason and metadata.
 */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

/** The ErrorInfo domain whose reasons are llama_orch.v1.ErrorCode value names. */
export const ERROR_DOMAIN = "llama-orch.v1";

/** The gRPC status that best describes each error code (for grpcurl users). */
const GRPC_STATUS: Record<ErrorCode, GrpcStatus> = {
  [ErrorCode.ERROR_CODE_UNSPECIFIED]: GrpcStatus.UNKNOWN,
  [ErrorCode.ERROR_CODE_ADMISSION_REJECT]: GrpcStatus.RESOURCE_EXHAUSTED,
  [ErrorCode.ERROR_CODE_QUEUE_FULL_DROP_LRU]: GrpcStatus.RESOURCE_EXHAUSTED,
  [ErrorCode.ERROR_CODE_INVALID_PARAMS]: GrpcStatus.INVALID_ARGUMENT,
  [ErrorCode.ERROR_CODE_POOL_UNREADY]: GrpcStatus.UNAVAILABLE,
  [ErrorCode.ERROR_CODE_POOL_UNAVAILABLE]: GrpcStatus.UNAVAILABLE,
  [ErrorCode.ERROR_CODE_REPLICA_EXHAUSTED]: GrpcStatus.RESOURCE_EXHAUSTED,
  [ErrorCode.ERROR_CODE_DECODE_TIMEOUT]: GrpcStatus.DEADLINE_EXCEEDED,
  [ErrorCode.ERROR_CODE_WORKER_RESET]: GrpcStatus.UNAVAILABLE,
  [ErrorCode.ERROR_CODE_INTERNAL]: GrpcStatus.INTERNAL,
  [ErrorCode.ERROR_CODE_DEADLINE_UNMET]: GrpcStatus.FAILED_PRECONDITION,
  [ErrorCode.ERROR_CODE_MODEL_DEPRECATED]: GrpcStatus.FAILED_PRECONDITION,
  [ErrorCode.ERROR_CODE_UNTRUSTED_ARTIFACT]: GrpcStatus.PERMISSION_DENIED,
  [ErrorCode.ERROR_CODE_NOT_FOUND]: GrpcStatus.NOT_FOUND,
  [ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE]: GrpcStatus.RESOURCE_EXHAUSTED,
  [ErrorCode.ERROR_CODE_UNAUTHORIZED]: GrpcStatus.UNAUTHENTICATED,
  [ErrorCode.ERROR_CODE_FORBIDDEN]: GrpcStatus.PERMISSION_DENIED,
  [ErrorCode.ERROR_CODE_METHOD_NOT_ALLOWED]: GrpcStatus.UNIMPLEMENTED,
  [ErrorCode.ERROR_CODE_INSUFFICIENT_ROLE]: GrpcStatus.PERMISSION_DENIED,
  [ErrorCode.ERROR_CODE_CORE_UNAVAILABLE]: GrpcStatus.UNAVAILABLE,
  [ErrorCode.ERROR_CODE_SHUTTING_DOWN]: GrpcStatus.UNAVAILABLE,
  [ErrorCode.UNRECOGNIZED]: GrpcStatus.UNKNOWN,
};

/** Any's type URL: a prefix ending in "/" and the message's full name. */
function pack(typeName: string, value: Uint8Array): Any {
  return { typeUrl: `type.googleapis.com/${typeName}`, value: Buffer.from(value) };
}

function typeNameOf(any: Any): string {
  return any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1);
}

/** ErrorInfo metadata carries only what is set, so an absent key means the field's default. */
function errorInfoOf(d: ErrorDetail): ErrorInfo {
  const metadata: Record<string, string> = {};
  if (d.engine !== Engine.ENGINE_UNSPECIFIED) metadata.engine = engineToJSON(d.engine);
  if (d.retriable) metadata.retriable = "true";
  if (d.retryAfterMs !== undefined) metadata.retry_after_ms = String(d.retryAfterMs);
  if (d.policyLabel) metadata.policy_label = d.policyLabel;
  if (d.field) metadata.field = d.field;
  return { reason: errorCodeToJSON(d.code), domain: ERROR_DOMAIN, metadata };
}

/**
 * The google.rpc.Status for an error: ErrorInfo always (what our peers read),
 * plus RetryInfo and BadRequest where they apply (what generic tools and
 * Google's client libraries understand without knowing our ErrorInfo keys).
 */
export function statusOf(d: ErrorDetail): Status {
  const details = [pack("google.rpc.ErrorInfo", ErrorInfo.encode(errorInfoOf(d)).finish())];
  if (d.retryAfterMs !== undefined) {
    const retryDelay = { seconds: Math.floor(d.retryAfterMs / 1000), nanos: (d.retryAfterMs % 1000) * 1_000_000 };
    details.push(pack("google.rpc.RetryInfo", RetryInfo.encode({ retryDelay }).finish()));
  }
  if (d.code === ErrorCode.ERROR_CODE_INVALID_PARAMS && d.field) {
    const badRequest = { fieldViolations: [{ field: d.field, description: d.message }] };
    details.push(pack("google.rpc.BadRequest", BadRequest.encode(badRequest).finish()));
  }
  return { code: GRPC_STATUS[d.code] ?? GrpcStatus.UNKNOWN, message: d.message, details };
}

/** Rebuilds the ErrorDetail from our ErrorInfo; a reason this build does not know stays UNRECOGNIZED. */
function detailOf(message: string, info: ErrorInfo): ErrorDetail {
  const m = info.metadata;
  const retryAfterMs = m.retry_after_ms !== undefined && /^\d+$/.test(m.retry_after_ms) ? Number(m.retry_after_ms) : undefined;
  return {
    code: errorCodeFromJSON(info.reason),
    message,
    engine: m.engine !== undefined ? engineFromJSON(m.engine) : Engine.ENGINE_UNSPECIFIED,
    retriable: m.retriable === "true",
    retryAfterMs,
    policyLabel: m.policy_label ?? "",
    field: m.field ?? "",
  };
}

/** The ErrorDetail in a serialized google.rpc.Status, or undefined when it holds none of ours or is not a Status. */
export function detailOfStatus(raw: Uint8Array): ErrorDetail | undefined {
  try {
    const status = Status.decode(raw);
    for (const any of status.details) {
      if (typeNameOf(any) !== "google.rpc.ErrorInfo") continue;
      const info = ErrorInfo.decode(any.value);
      if (info.domain === ERROR_DOMAIN) return detailOf(status.message, info);
    }
    return undefined;
  } catch {
    return undefined;
  }
}

/** As a grpc-js ServiceError-shaped object for a handler's callback or emit. */
export function serviceErrorOf(d: ErrorDetail): Partial<ServiceError> {
  const status = statusOf(d);
  const metadata = new Metadata();
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(Status.encode(status).finish()));
  return { code: status.code, details: d.message, metadata };
}

/** Reads the ErrorDetail a peer attached to a failed call, if any. */
export function errorDetailOf(err: Partial<ServiceError>): ErrorDetail | undefined {
  const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!raw || typeof raw === "string") return undefined;
  return detailOfStatus(raw);
}
