// The seam between the engine-independent sidecar (workers/sidecar/) and one
// engine family (workers/mock/, later workers/llamacpp/, workers/vllm/, ...).
// Every adapter implements EngineAdapter; the sidecar owns slots, the gRPC
// stream, batching, logs and metrics, so an adapter only talks to its engine.
import { Workload, type StopReason } from "../contracts/gen/llama_orch/v1/common.js";
import {
  WorkerErrorKind,
  workerErrorKindFromJSON,
  workerErrorKindToJSON,
  type InfoResponse,
  type SubmitRequest,
  type WorkerHealth,
  type WorkerLoadState,
  type WorkerMetrics,
} from "../contracts/gen/llama_orch/v1/worker.js";

/**
 * What an adapter knows about its engine instance: the Info response minus the
 * sidecar's own identity (pool and replica), which the adapter never needs.
 */
export type EngineInfo = Omit<InfoResponse, "poolId" | "replicaId">;

/**
 * Info of an engine the sidecar reaches over HTTP: what the engine itself
 * tells, plus what every such engine has alike here: the one model it was
 * started with (completions of it unless `workloads` says otherwise), and no
 * device mask or VRAM figures the sidecar could see. `modelDigest` "" when
 * the engine reports none.
 */
export function httpEngineInfo(
  told: Pick<EngineInfo, "engine" | "adapter" | "engineVersion" | "modelRef" | "ctxMax" | "features"> & {
    modelDigest?: string;
    workloads?: readonly Workload[];
  },
): EngineInfo {
  return {
    ...told,
    modelDigest: told.modelDigest ?? "",
    workloads: told.workloads ? [...told.workloads] : [Workload.WORKLOAD_COMPLETION],
    deviceMask: "",
    vramTotalBytes: 0,
    vramFreeBytes: 0,
    servesAnyModel: false,
  };
}

/**
 * Where a generation's output goes. Batch-oriented on purpose: an adapter
 * hands over every token it has at that moment in one call (an HTTP engine:
 * all frames decoded from one socket chunk; the mock: all tokens due at this
 * tick), so the sidecar pays its per-call costs per batch, not per token.
 */
export interface GenerationSink {
  /** Once, before any token: the engine accepted the prompt. */
  started(tokensIn: number): void;
  /**
   * One or more consecutive tokens, one text per token. The sink takes
   * ownership of `texts`: the adapter must not touch the array afterwards.
   */
  tokens(texts: string[]): void;
  /** Optional progress figures; the sidecar may drop them under backpressure. */
  metrics?(m: WorkerMetrics): void;
  /** Embedding workload: one input's vector, in input order. The sink takes ownership of `vector`. */
  embedding(index: number, vector: number[]): void;
  /** Rerank workload: one document's relevance to the query, in document order. */
  rerank(index: number, relevanceScore: number): void;
}

export interface GenerationResult {
  stopReason: StopReason;
  /** Prompt tokens as the engine finally counted them, when it reports that at the end. */
  tokensIn?: number;
  /** The engine's own decode time; the sidecar measures from `started` when absent. */
  decodeTimeMs?: number;
}

/**
 * A generation failed in a way the adapter can classify. Anything else an
 * adapter throws is reported as WORKER_ERROR_KIND_INTERNAL (a bug).
 */
export class WorkerFailure extends Error {
  override readonly name = "WorkerFailure";

  constructor(
    readonly kind: WorkerErrorKind,
    message: string,
    readonly retriable: boolean = isRetriableByDefault(kind),
    /** `cause`: the typed error behind it (a model load's ProvisionError), for whoever must tell failures apart. */
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What a LoadModel call asks beyond the model_ref. */
export interface LoadModelOptions {
  /** The digest the model's bytes must have, "sha256:<64 hex>" (the catalog's); absent: the source's own, or none. */
  expectedDigest?: string;
}

/**
 * An adapter that can evict only through an engine feature found disabled:
 * the engine offers no way, as if the adapter had no evictSession.
 */
export class EvictionUnsupportedError extends Error {
  override readonly name = "EvictionUnsupportedError";
}

/**
 * Kinds where trying again (later, or on a sibling replica) can succeed
 * without changing the request.
 */
export function isRetriableByDefault(kind: WorkerErrorKind): boolean {
  switch (kind) {
    case WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE:
    case WorkerErrorKind.WORKER_ERROR_KIND_CAPACITY:
    case WorkerErrorKind.WORKER_ERROR_KIND_TIMEOUT:
    case WorkerErrorKind.WORKER_ERROR_KIND_RESET:
      return true;
    default:
      return false;
  }
}

const KIND_PREFIX = "WORKER_ERROR_KIND_";

/**
 * Public (lower-case, unprefixed) names of WorkerErrorKind, e.g. "engine_error",
 * for flags and the mock's fault directive. Same convention as contracts/enums.ts.
 */
export const workerErrorKinds = {
  name(kind: WorkerErrorKind): string {
    return workerErrorKindToJSON(kind).slice(KIND_PREFIX.length).toLowerCase();
  },
  parse(name: string): WorkerErrorKind | undefined {
    const kind = workerErrorKindFromJSON(KIND_PREFIX + name.toUpperCase());
    return kind === WorkerErrorKind.UNRECOGNIZED || kind === WorkerErrorKind.WORKER_ERROR_KIND_UNSPECIFIED ? undefined : kind;
  },
  /** Every public name, for help texts and error messages. */
  names(): string[] {
    return Object.values(WorkerErrorKind)
      .filter((v): v is WorkerErrorKind => typeof v === "number" && v > WorkerErrorKind.WORKER_ERROR_KIND_UNSPECIFIED)
      .map((v) => workerErrorKinds.name(v));
  },
};

export interface EngineAdapter {
  /** Static facts about the engine instance; cheap, called per generation for log fields. */
  info(): EngineInfo;
  health(): WorkerHealth;
  /** Called on every health change; returns the unsubscribe function. */
  onHealthChange(listener: (health: WorkerHealth) => void): () => void;
  /** How many generations the engine runs at once; the sidecar's slot pool has this size. */
  slotsTotal(): number;
  /** The engine's KV-cache fill, 0..1, when it reports one. Sampled on props changes and scrapes. */
  kvCacheUsageRatio?(): number | undefined;
  /**
   * Drops what the engine keeps for a session (its KV cache); resolves true
   * when there was something to drop. Absent when the engine offers no way;
   * rejects with EvictionUnsupportedError when the engine turns out to offer
   * none (a llama.cpp server started without --slot-save-path).
   */
  evictSession?(sessionId: string): Promise<boolean>;
  /**
   * Runs one generation: `sink.started` once, then `sink.tokens` batches.
   * Rejects with WorkerFailure on classified errors. When `signal` aborts it
   * must settle promptly (resolve or reject, either is fine: the sidecar knows
   * why it aborted) and stop the engine's work, e.g. by closing its stream.
   */
  generate(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult>;
  /**
   * Switches the engine to another model; resolves once `modelRef` serves and
   * `info()` announces it (model_ref, model_digest). While it loads, health is
   * `{live: true, ready: false, lastError: "loading <ref>"}` and onHealthChange
   * listeners hear it. Rejects with WorkerFailure (ENGINE_UNAVAILABLE when the
   * engine cannot load anything right now, e.g. another load is in progress;
   * INVALID_REQUEST when it cannot load this model) and then the previous model
   * keeps serving: health is ready again with lastError
   * "failed to load <ref>: ...", until the next successful load clears it.
   * Absent when the engine cannot switch models. An adapter that cannot
   * check `options.expectedDigest` (the mock: its models have no bytes)
   * ignores it.
   */
  loadModel?(modelRef: string, options?: LoadModelOptions): Promise<void>;
  /**
   * What the sidecar reports beside health (HealthResponse.load): how far a
   * model load has got, and whether an unloaded model is loaded again by the
   * next generate. Its changes are heard through onHealthChange. Undefined
   * while nothing loads and nothing is unloaded; absent on adapters that never
   * report one.
   */
  loadState?(): WorkerLoadState | undefined;
  /** Begins bringing the engine up; resolves once it is ready. Health reports progress meanwhile. */
  start(): Promise<void>;
  stop(): Promise<void>;
}
