import { status as GrpcStatus, type sendUnaryData, type ServerUnaryCall, type StatusObject } from "@grpc/grpc-js";
import { Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import {
  WorkerErrorKind,
  type CancelRequest,
  type EvictSessionRequest,
  type EvictSessionResponse,
  type CancelResponse,
  type InfoRequest,
  type InfoResponse,
  type LoadModelRequest,
  type LoadModelResponse,
  type WorkerHealth,
  type SubmitRequest,
  type WorkerError,
  type WorkerProps,
  type WorkerServiceServer,
} from "../../contracts/gen/llama_orch/v1/worker.js";
import { engines, workloads } from "../../contracts/enums.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { correlationIdOf } from "../../contracts/runtime/metadata.js";
import { otelContext, traceContextFromMetadata, traceIdOf } from "../../contracts/runtime/trace-context.js";
import { EvictionUnsupportedError, workerErrorKinds, type EngineAdapter } from "../engine-adapter.js";
import type { MaskedMemory } from "../hardware/device-mask.js";
import type { ReplicaHardware } from "./replica-hardware.js";
import type { GenerationOutcome, SidecarMetrics } from "./metrics.js";
import { endOf, errorOf, failure, logEnd, stoppedTerminal, type StopCause } from "./generation-end.js";
import { publicText } from "../../contracts/runtime/public-text.js";
import { startGenerationSpan } from "./generation-span.js";
import type { SlotLease, SlotPool } from "./slot-pool.js";
import { SubmitStream, type SubmitCall, type Terminal } from "./submit-stream.js";
import { DEFAULT_HOLD, GenerationTable, type HoldOptions } from "./generation-table.js";
import { serveLoadModel } from "./load-model-call.js";
import { serveWatch } from "./watch-stream.js";

/**
 * Who this sidecar is. startWorker fills in the replica id once the port is
 * bound (its default is derived from the port); no call can arrive before
 * that, because the address is only published afterwards.
 */
export interface SidecarIdentity {
  poolId: string;
  replicaId: string;
}

export interface WorkerServiceDeps {
  adapter: EngineAdapter;
  slots: SlotPool;
  identity: SidecarIdentity;
  metrics: SidecarMetrics;
  logger: Logger;
  /** The replica's measured memory, when the sidecar measures it (props carry it, and change with it). */
  hardware?: Pick<ReplicaHardware, "memory" | "onChange">;
  /** How much of a detachable generation is held, and for how long, when its call breaks. */
  hold?: HoldOptions;
}

function memoryProps(m: MaskedMemory): Pick<WorkerProps, "vramTotalBytes" | "vramFreeBytes"> {
  return { vramTotalBytes: m.totalBytes, vramFreeBytes: m.freeBytes };
}

/**
 * llama_orch.v1.WorkerService over one EngineAdapter. Owns the table of
 * generations (running, and held for a core whose call broke) and the open
 * watch streams.
 */
export class WorkerService {
  readonly handlers: WorkerServiceServer;
  private readonly generations: GenerationTable;
  private readonly watches = new Set<() => void>();
  /** Set by close(): calls that slip in while the server shuts down are refused, not started. */
  private closed = false;
  /** Set by beginDrain(): health says not ready and new generations are refused, running ones go on. */
  private draining = false;
  /** Watchers of health told when the drain begins (the adapter tells them of its own changes). */
  private readonly drainListeners = new Set<() => void>();

  constructor(private readonly deps: WorkerServiceDeps) {
    const { adapter } = deps;
    this.generations = new GenerationTable(deps.hold ?? DEFAULT_HOLD);
    this.handlers = {
      health: (_call, callback) => callback(null, { health: this.health(), load: adapter.loadState?.() }),
      watchHealth: (call) =>
        this.watch((onClosed) =>
          serveWatch(
            call,
            // The load state's changes come through onHealthChange too, so one subscription sees both.
            () => ({ health: this.health(), load: adapter.loadState?.() }),
            (onChange) => this.onHealthChange(onChange),
            onClosed,
          ),
        ),
      props: (_call, callback) => callback(null, { props: this.props() }),
      watchProps: (call) =>
        this.watch((onClosed) =>
          serveWatch(
            call,
            () => ({ props: this.props() }),
            (onChange) => this.onPropsChange(onChange),
            onClosed,
          ),
        ),
      info: (_call: ServerUnaryCall<InfoRequest, InfoResponse>, callback: sendUnaryData<InfoResponse>) =>
        callback(null, { ...adapter.info(), poolId: deps.identity.poolId, replicaId: deps.identity.replicaId }),
      cancel: (call: ServerUnaryCall<CancelRequest, CancelResponse>, callback: sendUnaryData<CancelResponse>) => {
        callback(null, { found: this.generations.cancel(call.request.taskId) });
      },
      evictSession: (call: ServerUnaryCall<EvictSessionRequest, EvictSessionResponse>, callback: sendUnaryData<EvictSessionResponse>) => {
        if (!adapter.evictSession) {
          callback(null, { supported: false, evicted: false });
          return;
        }
        adapter.evictSession(call.request.sessionId).then(
          (evicted) => callback(null, { supported: true, evicted }),
          (err: Error) =>
            // An engine that turned out to offer no eviction (llama.cpp without --slot-save-path) is "not supported", not a failure.
            err instanceof EvictionUnsupportedError
              ? callback(null, { supported: false, evicted: false })
              : callback({ code: GrpcStatus.INTERNAL, details: `evicting session failed: ${publicText(err.message)}` }, null),
        );
      },
      loadModel: (call: ServerUnaryCall<LoadModelRequest, LoadModelResponse>, callback: sendUnaryData<LoadModelResponse>) => {
        this.loadModel(call).then(
          (response) => callback(null, response),
          (refusal: Partial<StatusObject>) => callback(refusal, null),
        );
      },
      submit: (call) => {
        this.submit(call).catch((err: unknown) => {
          // submit() classifies every engine failure itself; reaching here is a sidecar bug.
          deps.logger.error({ err, job_id: call.request.taskId }, "submit handler failed");
          if (!call.cancelled) call.destroy(err instanceof Error ? err : new Error(String(err)));
        });
      },
    };
  }

  props(): WorkerProps {
    return {
      slotsTotal: this.deps.slots.total,
      slotsFree: this.deps.slots.free,
      kvCacheUsageRatio: this.deps.adapter.kvCacheUsageRatio?.(),
      // The sidecar never queues: a full engine refuses with CAPACITY and core keeps the queue.
      requestsWaiting: 0,
      ...(this.deps.hardware ? memoryProps(this.deps.hardware.memory()) : {}),
    };
  }

  /**
   * SIGTERM: health turns not ready (so core places nothing new here) and
   * new generations are refused as retriable, so core runs them elsewhere;
   * the running ones go on until close().
   */
  beginDrain(): void {
    this.draining = true;
    for (const tell of [...this.drainListeners]) tell();
  }

  /** Health changes: the engine's own, and the drain's beginning. */
  private onHealthChange(onChange: () => void): () => void {
    const off = this.deps.adapter.onHealthChange(onChange);
    this.drainListeners.add(onChange);
    return () => {
      off();
      this.drainListeners.delete(onChange);
    };
  }

  /** Props changes: slots taken or given back, measured memory. */
  private onPropsChange(onChange: () => void): () => void {
    const offSlots = this.deps.slots.onChange(onChange);
    const offMemory = this.deps.hardware?.onChange(onChange);
    return () => {
      offSlots();
      offMemory?.();
    };
  }

  /** Generations running now (what a drain waits for). */
  get runningCount(): number {
    return this.generations.runningCount;
  }

  /** Health as core (and pool health's readers) see it: the engine's, public text only, and not ready while draining. */
  private health(): WorkerHealth {
    if (this.draining) return { live: true, ready: false, lastError: "the worker is shutting down" };
    return publicHealth(this.deps.adapter.health());
  }

  /** Generations held for a core whose call broke: registration tells core, which resumes or cancels each. */
  heldTaskIds(): string[] {
    return this.generations.heldTaskIds();
  }

  /** Registration's news of core: while core is away, generations that end are held too, their end perhaps lost with core. */
  coreLease(state: "accepted" | "lost"): void {
    if (state === "lost") this.generations.coreLost();
    else this.generations.coreBack();
  }

  /** Stops every running generation (their clients get a retriable RESET), drops the held ones and ends every watch stream. */
  close(): void {
    this.closed = true;
    this.generations.closeAll();
    for (const end of [...this.watches]) end();
  }

  private watch(serve: (onClosed: () => void) => () => void): void {
    const end = serve(() => this.watches.delete(end));
    if (this.closed) end();
    else this.watches.add(end);
  }

  private async submit(call: SubmitCall): Promise<void> {
    if (call.cancelled) return;
    const { slots, metrics } = this.deps;
    const request = call.request;
    const log = this.generationLogger(call);
    if (request.resume) {
      this.resume(call, log);
      return;
    }

    const refusal = this.refusalOf(request);
    // Claimed only after every other check, so a refused request never touches the pool.
    const lease = refusal ? undefined : slots.claim();
    if (!lease) {
      const error = refusal ?? failure(WorkerErrorKind.WORKER_ERROR_KIND_CAPACITY, `all ${slots.total} slots are busy`, true);
      log.warn(
        { event: "generation_rejected", error_kind: workerErrorKinds.name(error.kind) },
        `refused task ${request.taskId}: ${error.message}`,
      );
      metrics.generationFinished("rejected", 0, 0);
      new SubmitStream(call, noop).finish({ $case: "error", error });
      return;
    }
    await this.run(call, lease, log);
  }

  /** A resumed Submit carries on a held generation; without one it ends at once with a RESET. */
  private resume(call: SubmitCall, log: Logger): void {
    if (this.generations.resume(call)) return;
    const message = `this sidecar holds no generation of task ${call.request.taskId}`;
    log.info({ event: "resume_refused" }, message);
    new SubmitStream(call, noop).finish({ $case: "error", error: failure(WorkerErrorKind.WORKER_ERROR_KIND_RESET, message, true) });
  }

  /** The fields every log line of one generation carries. */
  private generationLogger(call: SubmitCall): Logger {
    const { adapter, identity } = this.deps;
    const info = adapter.info();
    return this.deps.logger.child({
      job_id: call.request.taskId,
      session_id: call.request.sessionId,
      engine: engines.name(info.engine),
      engine_version: info.engineVersion,
      pool_id: identity.poolId,
      replica_id: identity.replicaId,
      correlation_id: correlationIdOf(call.metadata),
      trace_id: traceIdOf(traceContextFromMetadata(call.metadata)),
    });
  }

  /** Runs one accepted generation on its claimed slot, stoppable through `running` until it settles. */
  private async run(call: SubmitCall, lease: SlotLease, log: Logger): Promise<void> {
    const { adapter, metrics } = this.deps;
    const request = call.request;
    const controller = new AbortController();
    let cause: StopCause | undefined;
    const stop = (why: StopCause): void => {
      if (cause !== undefined) return;
      cause = why;
      controller.abort();
    };
    const generation = this.generations.start(call, stop, log, (tokensIn) =>
      log.info(
        { event: "generation_start", tokens_in: tokensIn, max_tokens: request.maxTokens },
        `started task ${request.taskId}: ${tokensIn} prompt tokens, up to ${request.maxTokens} new`,
      ),
    );
    const stream = generation.record;
    const { identity } = this.deps;
    const span = startGenerationSpan(call, { ...identity, engine: engines.name(adapter.info().engine) });

    let terminal: Terminal;
    let failed: unknown;
    try {
      terminal = endOf(await otelContext.with(span.ctx, () => adapter.generate(request, controller.signal, stream)), stream);
    } catch (err) {
      failed = err;
      terminal = { $case: "error", error: errorOf(err) };
    } finally {
      // The one place a generation gives its slot back, before the client can see the end.
      lease.release();
    }
    terminal = stoppedTerminal(cause, stream) ?? terminal;
    generation.settle(terminal, cause);

    const outcome: GenerationOutcome = cause !== undefined ? "canceled" : terminal.$case === "end" ? "completed" : "failed";
    metrics.generationFinished(outcome, stream.tokensIn, stream.tokensOut);
    span.end(outcome, stream, terminal);
    logEnd(log, request.taskId, outcome, cause, stream, terminal, failed);
  }

  /**
   * LoadModel: switches the engine to another model, one start and one result
   * log line per load. Rejects with the gRPC status to answer: INVALID_ARGUMENT
   * (no model_ref), UNIMPLEMENTED (the adapter cannot switch models),
   * UNAVAILABLE (shutting down) or FAILED_PRECONDITION (the load failed; the
   * adapter keeps the previous model serving; a digest mismatch also carries
   * UNTRUSTED_ARTIFACT, see load-refusal.ts).
   */
  private loadModel(call: ServerUnaryCall<LoadModelRequest, LoadModelResponse>): Promise<LoadModelResponse> {
    return serveLoadModel(this.deps, call, this.closed || this.draining);
  }

  /** Why a request cannot run here, checked before a slot is claimed. */
  private refusalOf(request: SubmitRequest): WorkerError | undefined {
    const invalid = (message: string): WorkerError => failure(WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST, message, false);
    const info = this.deps.adapter.info();
    if (!request.taskId) return invalid("task_id is required");
    if (request.maxTokens < 1) return invalid("max_tokens must be at least 1");
    if (this.generations.isRunning(request.taskId)) return invalid(`task ${request.taskId} is already running on this replica`);
    // ctx_max 0 means the engine does not say (Triton, plain OpenAI servers).
    if (info.ctxMax > 0 && request.ctx > info.ctxMax) return invalid(`ctx ${request.ctx} exceeds this engine's ctx_max ${info.ctxMax}`);
    if (!info.servesAnyModel && request.modelRef && request.modelRef !== info.modelRef) {
      return invalid(`this replica serves ${info.modelRef}, not ${request.modelRef}`);
    }
    if (request.workload !== Workload.WORKLOAD_UNSPECIFIED && !info.workloads.includes(request.workload)) {
      return invalid(`this engine does not run ${workloads.name(request.workload)} workloads`);
    }
    if (this.closed || this.draining)
      return failure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, "the worker is shutting down", true);
    const health = this.deps.adapter.health();
    // A model unloaded for idleness is loaded again by the generation itself (its started waits for the load).
    if (!health.ready && !this.deps.adapter.loadState?.()?.wakesOnSubmit) {
      return failure(
        WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE,
        `engine not ready${health.lastError ? `: ${publicText(health.lastError)}` : ""}`,
        true,
      );
    }
    return undefined;
  }
}

function noop(): void {}

/** Health as core (and pool health's readers) see it: the engine's last error without addresses or stack text. */
function publicHealth(health: WorkerHealth): WorkerHealth {
  return health.lastError ? { ...health, lastError: publicText(health.lastError) } : health;
}
