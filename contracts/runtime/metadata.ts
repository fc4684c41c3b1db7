import { Metadata, type ServiceError } from "@grpc/grpc-js";
import type { Context } from "@opentelemetry/api";
import { type ErrorCode, ErrorDetail } from "../gen/llama_orch/v1/common.js";
import { serviceErrorOf } from "./error-status.js";
import { injectTraceContext } from "./trace-context.js";

/** gRPC metadata key carrying the public X-Correlation-Id across hops. */
export const CORRELATION_ID_KEY = "x-correlation-id";

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

/** An error with a stable code, thrown inside core and sent to gRPC callers. */
export class OrchError extends Error {
  constructor(readonly detail: ErrorDetail) {
    super(detail.message);
    this.name = "OrchError";
  }

  static of(code: ErrorCode, message: string, extra: Partial<ErrorDetail> = {}): OrchError {
    return new OrchError({ ...ErrorDetail.fromPartial({ code, message }), ...extra });
  }

  /** As a grpc-js ServiceError-shaped object for a handler's callback or emit (see error-status.ts for the wire form). */
  toServiceError(): Partial<ServiceError> {
    return serviceErrorOf(this.detail);
  }
}
