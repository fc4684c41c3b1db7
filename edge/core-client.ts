import type { Context } from "@opentelemetry/api";
import { Metadata, credentials, status as GrpcStatus, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { ErrorCode } from "../contracts/gen/llama_orch/v1/common.js";
import {
  TaskServiceClient,
  type CancelTaskResponse,
  type CreateTaskRequest,
  type CreateTaskResponse,
  type StreamTaskResponse,
} from "../contracts/gen/llama_orch/v1/task.js";
import { SessionServiceClient, type DeleteSessionResponse, type GetSessionResponse } from "../contracts/gen/llama_orch/v1/session.js";
import { CLIENT_CHANNEL_OPTIONS } from "../contracts/runtime/grpc-server.js";
import { correlationMetadata, errorDetailOf } from "../contracts/runtime/metadata.js";
import { HttpError } from "./http-errors.js";

/** How long a unary call to core may take before the edge gives up. */
const UNARY_DEADLINE_MS = 10_000;

/** The edge's only way to core: Task and Session service calls carrying the correlation id and trace. */
export class CoreClient {
  private readonly tasks: TaskServiceClient;
  private readonly sessions: SessionServiceClient;

  constructor(
    readonly address: string,
    /** Presented to core on every call when core requires it. */
    private readonly apiKey?: string,
  ) {
    const options = { ...CLIENT_CHANNEL_OPTIONS, "grpc.max_concurrent_streams": 10_000 };
    this.tasks = new TaskServiceClient(address, credentials.createInsecure(), options);
    // Same target and options: grpc-js shares one channel between the two clients.
    this.sessions = new SessionServiceClient(address, credentials.createInsecure(), options);
  }

  getSession(sessionId: string, correlationId: string, trace?: Context): Promise<GetSessionResponse> {
    return new Promise((resolve, reject) => {
      this.sessions.getSession({ sessionId }, this.metadata(correlationId, trace), { deadline: Date.now() + UNARY_DEADLINE_MS }, (err, res) =>
        err ? reject(toHttpError(err)) : resolve(res),
      );
    });
  }

  deleteSession(sessionId: string, correlationId: string, trace?: Context): Promise<DeleteSessionResponse> {
    return new Promise((resolve, reject) => {
      this.sessions.deleteSession({ sessionId }, this.metadata(correlationId, trace), { deadline: Date.now() + UNARY_DEADLINE_MS }, (err, res) =>
        err ? reject(toHttpError(err)) : resolve(res),
      );
    });
  }

  createTask(request: CreateTaskRequest, correlationId: string, trace?: Context): Promise<CreateTaskResponse> {
    return new Promise((resolve, reject) => {
      this.tasks.createTask(request, this.metadata(correlationId, trace), { deadline: Date.now() + UNARY_DEADLINE_MS }, (err, res) =>
        err ? reject(toHttpError(err)) : resolve(res),
      );
    });
  }

  cancelTask(taskId: string, reason: string, correlationId: string, trace?: Context): Promise<CancelTaskResponse> {
    return new Promise((resolve, reject) => {
      this.tasks.cancelTask({ taskId, reason }, this.metadata(correlationId, trace), { deadline: Date.now() + UNARY_DEADLINE_MS }, (err, res) =>
        err ? reject(toHttpError(err)) : resolve(res),
      );
    });
  }

  streamTask(taskId: string, resumeAfterSeq: number | undefined, correlationId: string, trace?: Context): ClientReadableStream<StreamTaskResponse> {
    return this.tasks.streamTask({ taskId, resumeAfterSeq }, this.metadata(correlationId, trace));
  }

  private metadata(correlationId: string, trace: Context | undefined): Metadata {
    const md = correlationMetadata(correlationId, trace);
    if (this.apiKey) md.set("authorization", `Bearer ${this.apiKey}`);
    return md;
  }

  close(): void {
    this.tasks.close();
    this.sessions.close();
  }
}

/** Core's typed error when it sent one; otherwise what the transport failure means to a client. */
export function toHttpError(err: ServiceError): HttpError {
  const detail = errorDetailOf(err);
  if (detail) return new HttpError(detail);
  if (err.code === GrpcStatus.UNAVAILABLE || err.code === GrpcStatus.DEADLINE_EXCEEDED) {
    return HttpError.of(ErrorCode.ERROR_CODE_POOL_UNAVAILABLE, `core scheduler unreachable: ${err.details}`, { retriable: true, retryAfterMs: 1000 });
  }
  return HttpError.of(ErrorCode.ERROR_CODE_INTERNAL, `core call failed: ${err.details || err.message}`);
}
