import { randomUUID } from "node:crypto";
import type { Context } from "@opentelemetry/api";
import { type Metadata, status as GrpcStatus, type CallOptions, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { ErrorCode } from "../contracts/gen/llama_orch/v1/common.js";
import { ArtifactServiceClient } from "../contracts/gen/llama_orch/v1/artifact.js";
import { CatalogServiceClient } from "../contracts/gen/llama_orch/v1/catalog.js";
import { MetricsServiceClient, type GetMetricsResponse } from "../contracts/gen/llama_orch/v1/metrics.js";
import { CapabilitiesServiceClient, PoolServiceClient } from "../contracts/gen/llama_orch/v1/pool.js";
import { SessionServiceClient } from "../contracts/gen/llama_orch/v1/session.js";
import { TaskServiceClient, type StreamTaskResponse } from "../contracts/gen/llama_orch/v1/task.js";
import type { Dial } from "../contracts/runtime/dial.js";
import { errorDetailOf } from "../contracts/runtime/error-status.js";
import { correlationMetadata } from "../contracts/runtime/metadata.js";
import { HttpError } from "./http-errors.js";

/** How long a unary call to core may take before the edge gives up. */
const UNARY_DEADLINE_MS = 10_000;

/** What every call to core carries on behalf of an HTTP request. */
export interface CallContext {
  correlationId: string;
  trace?: Context;
  /** The caller's verified key, forwarded so core checks it; without one the edge's own key goes (dial.ts). */
  key?: string;
}

type Callback<T> = (err: ServiceError | null, res: T) => void;

/**
 * The edge's only way to core. One client per core service (grpc-js shares
 * one channel between clients with the same target and options); every call
 * carries the correlation id, the trace context and a key: the caller's, or
 * the edge's own.
 */
export class CoreClient {
  readonly tasks: TaskServiceClient;
  readonly sessions: SessionServiceClient;
  readonly pools: PoolServiceClient;
  readonly capabilities: CapabilitiesServiceClient;
  readonly catalog: CatalogServiceClient;
  readonly artifacts: ArtifactServiceClient;
  readonly metrics: MetricsServiceClient;

  constructor(
    readonly address: string,
    dial: Dial,
  ) {
    const creds = dial.credentials;
    const options = dial.options;
    this.tasks = new TaskServiceClient(address, creds, options);
    this.sessions = new SessionServiceClient(address, creds, options);
    this.pools = new PoolServiceClient(address, creds, options);
    this.capabilities = new CapabilitiesServiceClient(address, creds, options);
    this.catalog = new CatalogServiceClient(address, creds, options);
    this.artifacts = new ArtifactServiceClient(address, creds, options);
    this.metrics = new MetricsServiceClient(address, creds, options);
  }

  /** A unary call with deadline; a failure becomes the HttpError to answer with. */
  call<T>(
    cc: CallContext,
    invoke: (md: Metadata, options: CallOptions, callback: Callback<T>) => unknown,
    deadlineMs = UNARY_DEADLINE_MS,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      invoke(this.metadata(cc), { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(toHttpError(err)) : resolve(res)));
    });
  }

  /** Core's metrics exposition, for the edge's /metrics (which many requests share, so it carries a correlation id of its own). */
  async metricsText(timeoutMs: number): Promise<string> {
    const cc = { correlationId: randomUUID() };
    const res = await this.call<GetMetricsResponse>(cc, (md, options, cb) => this.metrics.getMetrics({}, md, options, cb), timeoutMs);
    return res.text;
  }

  /** `has`: the tokens and results the client already has, for a resume that may reach a core that restarted since. */
  streamTask(
    taskId: string,
    resumeAfterSeq: number | undefined,
    cc: CallContext,
    has?: { tokens: number; results: number },
  ): ClientReadableStream<StreamTaskResponse> {
    return this.tasks.streamTask({ taskId, resumeAfterSeq, tokensReceived: has?.tokens, resultsReceived: has?.results }, this.metadata(cc));
  }

  close(): void {
    for (const c of [this.tasks, this.sessions, this.pools, this.capabilities, this.catalog, this.artifacts, this.metrics]) c.close();
  }

  private metadata(cc: CallContext): Metadata {
    const md = correlationMetadata(cc.correlationId, cc.trace);
    if (cc.key) md.set("authorization", `Bearer ${cc.key}`);
    return md;
  }
}

/**
 * Core's typed error when it sent one; otherwise what the transport failure
 * means to a client, in words of its own: gRPC's details name core's address
 * and the socket error, so they ride along as the error's cause, which the
 * error middleware logs with the correlation id.
 */
export function toHttpError(err: ServiceError): HttpError {
  const detail = errorDetailOf(err);
  if (detail) return new HttpError(detail);
  const cause = `gRPC ${GrpcStatus[err.code] ?? err.code}: ${err.details || err.message}`;
  if (err.code === GrpcStatus.UNAVAILABLE || err.code === GrpcStatus.DEADLINE_EXCEEDED) {
    return HttpError.of(
      ErrorCode.ERROR_CODE_POOL_UNAVAILABLE,
      "core scheduler unreachable; retry shortly",
      { retriable: true, retryAfterMs: 1000 },
      cause,
    );
  }
  return HttpError.of(
    ErrorCode.ERROR_CODE_INTERNAL,
    "the call to the core scheduler failed; the edge's log has the detail under this correlation id",
    {},
    cause,
  );
}
