import { Metadata, status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import type { Context } from "@opentelemetry/api";
import { ErrorCode, ErrorDetail } from "../gen/llama_orch/v1/common.js";
import { injectTraceContext } from "./trace-context.js";

/** gRPC metadata key carrying the public X-Correlation-Id across hops. */
export const CORRELATION_ID_KEY = "x-correlation-id";
/** Trailer carrying a serialized ErrorDetail, so typed codes survive a hop. */
export const ERROR_DETAIL_KEY = "llama-orch-error-bin";

/** Metadata for a call on behalf of a request: its correlation id and trace context. */
export function correlationMetadata(correlationId: string | undefined, traceContext?: Context): Metadata {
  const md = new Metadata();
  if (correlationId) md.set(CORRELATION_ID_KEY, correlationId);
  if (traceContext) injectTraceContext(traceContext, md);
  return md;
}

export function correlationIdOf(md: Metadata): string | undefined {
  const v = md.get(CORRELATION_ID_KEY)[0];
  return typeof v === "string" && v.length > 0 ? v : undefined;
}

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
  [ErrorCode.UNRECOGNIZED]: GrpcStatus.UNKNOWN,
};

/** An error with a stable code, thrown inside core and sent to gRPC callers. */
export class OrchError extends Error {
  constructor(
    readonly detail: ErrorDetail,
  ) {
    super(detail.message);
    this.name = "OrchError";
  }

  static of(code: ErrorCode, message: string, extra: Partial<ErrorDetail> = {}): OrchError {
    return new OrchError({ ...ErrorDetail.fromPartial({ code, message }), ...extra });
  }

  /** As a grpc-js ServiceError-shaped object for a handler's callback or emit. */
  toServiceError(): Partial<ServiceError> {
    const metadata = new Metadata();
    metadata.set(ERROR_DETAIL_KEY, Buffer.from(ErrorDetail.encode(this.detail).finish()));
    return { code: GRPC_STATUS[this.detail.code], details: this.detail.message, metadata };
  }
}

/** Reads the ErrorDetail a peer attached to a failed call, if any. */
export function errorDetailOf(err: Partial<ServiceError>): ErrorDetail | undefined {
  const raw = err.metadata?.get(ERROR_DETAIL_KEY)[0];
  if (!raw || typeof raw === "string") return undefined;
  try {
    return ErrorDetail.decode(raw);
  } catch {
    return undefined;
  }
}
