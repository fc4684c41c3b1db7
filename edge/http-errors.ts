import { Engine, ErrorCode, type ErrorDetail } from "../contracts/gen/llama_orch/v1/common.js";
import { errorCodes } from "../contracts/enums.js";
import { publicEngineName } from "../contracts/task-events.js";

/** The one table from error code to HTTP status. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  [ErrorCode.ERROR_CODE_UNSPECIFIED]: 500,
  [ErrorCode.ERROR_CODE_ADMISSION_REJECT]: 429,
  [ErrorCode.ERROR_CODE_QUEUE_FULL_DROP_LRU]: 429,
  [ErrorCode.ERROR_CODE_INVALID_PARAMS]: 400,
  [ErrorCode.ERROR_CODE_POOL_UNREADY]: 503,
  [ErrorCode.ERROR_CODE_POOL_UNAVAILABLE]: 503,
  [ErrorCode.ERROR_CODE_REPLICA_EXHAUSTED]: 503,
  [ErrorCode.ERROR_CODE_DECODE_TIMEOUT]: 504,
  [ErrorCode.ERROR_CODE_WORKER_RESET]: 502,
  [ErrorCode.ERROR_CODE_INTERNAL]: 500,
  [ErrorCode.ERROR_CODE_DEADLINE_UNMET]: 400,
  [ErrorCode.ERROR_CODE_MODEL_DEPRECATED]: 400,
  [ErrorCode.ERROR_CODE_UNTRUSTED_ARTIFACT]: 400,
  [ErrorCode.ERROR_CODE_NOT_FOUND]: 404,
  [ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE]: 413,
  [ErrorCode.ERROR_CODE_UNAUTHORIZED]: 401,
  [ErrorCode.ERROR_CODE_FORBIDDEN]: 403,
  [ErrorCode.ERROR_CODE_METHOD_NOT_ALLOWED]: 405,
  [ErrorCode.ERROR_CODE_INSUFFICIENT_ROLE]: 403,
  [ErrorCode.ERROR_CODE_CORE_UNAVAILABLE]: 503,
  [ErrorCode.ERROR_CODE_SHUTTING_DOWN]: 503,
  [ErrorCode.UNRECOGNIZED]: 500,
};

export interface ErrorEnvelope {
  code: string;
  message: string;
  engine?: string;
  retriable?: boolean;
  retry_after_ms?: number;
  policy_label?: string;
  field?: string;
}

/**
 * An error the edge answers with: status from HTTP_STATUS, body the envelope.
 * `cause` is what happened behind it, for the log only (never the envelope).
 */
export class HttpError extends Error {
  readonly status: number;
  constructor(
    readonly detail: ErrorDetail,
    cause?: string,
  ) {
    super(detail.message, cause === undefined ? undefined : { cause });
    this.status = HTTP_STATUS[detail.code] ?? 500;
  }

  static of(code: ErrorCode, message: string, extra: Partial<ErrorDetail> = {}, cause?: string): HttpError {
    return new HttpError(
      { code, message, engine: Engine.ENGINE_UNSPECIFIED, retriable: false, policyLabel: "", field: "", ...extra },
      cause,
    );
  }

  /** The cause given at construction: what the log gets beside the public message. */
  get internalDetail(): string | undefined {
    return typeof this.cause === "string" ? this.cause : undefined;
  }

  envelope(): ErrorEnvelope {
    return toEnvelope(this.detail);
  }
}

export function toEnvelope(d: ErrorDetail): ErrorEnvelope {
  const e: ErrorEnvelope = { code: errorCodes.name(d.code), message: d.message };
  const engine = publicEngineName(d.engine);
  if (engine) e.engine = engine;
  if (d.retriable) e.retriable = true;
  if (d.retryAfterMs !== undefined) e.retry_after_ms = d.retryAfterMs;
  if (d.policyLabel) e.policy_label = d.policyLabel;
  if (d.field) e.field = d.field;
  return e;
}

export { publicEngineName };
