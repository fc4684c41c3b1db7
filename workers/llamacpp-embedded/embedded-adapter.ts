// The llamacpp engine family run inside the sidecar's own process
// (node-llama-cpp's prebuilt llama.cpp): no engine server to install. A GGUF
// file is all it needs.
import { resolve } from "node:path";
import { Engine, Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest, type WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import { workloads } from "../../contracts/enums.js";
import { localPathOf, parseModelRef } from "../../contracts/model-ref.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { EngineHealth } from "../engine/engine-health.js";
import { WorkerFailure, type EngineAdapter, type EngineInfo, type GenerationResult, type GenerationSink } from "../engine-adapter.js";
import type { AffinityPool } from "./affinity-pool.js";
import { refuseUnhonoured, samplingFeatures } from "../engine/sampling-support.js";
import { generateOnSequence } from "./embedded-generation.js";
import { EMBEDDED_HONOURED } from "./embedded-sampling.js";
import { loadEmbeddedModel, workloadsOf, type EmbeddedModel } from "./embedded-model.js";
import { embed, rerank } from "./embedded-vectors.js";
import { llamaRuntime, type GpuChoice, type LlamaRuntime } from "./llama-runtime.js";

export interface EmbeddedOptions {
  modelRef: string;
  /** Parallel generations: the context's sequences (or one embedding/ranking context each). */
  slots: number;
  /** Context size of each slot, in tokens; capped at what the model was trained on. */
  ctx: number;
  /** llama.cpp threads per context; see defaultThreads. */
  threads: number;
  gpu: GpuChoice;
  gpuLayers: "auto" | "max" | number;
  deviceMask: string;
  /** Where relative file: refs resolve from. */
  baseDir: string;
  /** The file start() loads for `modelRef` when the sidecar fetched it (an hf: or https: ref in the model cache); default the local file the ref names. */
  modelPath?: string;
  /** Told how far llama.cpp has got loading the file, as bytes of its size (from its own 0..1 fraction). */
  onLoadProgress?: (bytesDone: number, bytesTotal: number) => void;
}

/**
 * Threads per context from the cores this process may use: half of them, at
 * least one. llama.cpp's threads spin while they wait, so more threads than
 * free cores collapses throughput (4 threads on 2 vCPUs: 4 tokens/s; 1
 * thread: ~1,100), and the sidecar's event loop, core and the edge need a
 * core too.
 */
export function defaultThreads(cores: number): number {
  return Math.max(1, Math.floor(cores / 2));
}

/** A model in use and the generations still running on it, so a replaced model is freed only once they end. */
interface Serving {
  model: EmbeddedModel;
  running: number;
  retired: boolean;
}

/** Runs `work` on a slot of the pool, giving the slot back in this one place whatever happens. */
async function withSlot<T>(
  pool: AffinityPool<T>,
  session: string,
  work: (slot: T) => Promise<GenerationResult>,
): Promise<GenerationResult> {
  // The sidecar's own slot pool admits no more generations than there are slots, so this is a bug guard.
  const lease = pool.claim(session);
  if (!lease) throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_CAPACITY, `all ${pool.total} slots are busy`);
  try {
    return await work(lease.slot);
  } finally {
    lease.release();
  }
}

export class EmbeddedLlamaAdapter implements EngineAdapter {
  private readonly engineHealth = new EngineHealth();
  private runtime: LlamaRuntime | undefined;
  private serving: Serving | undefined;
  /** The model_ref of the model serving now (what a reload changes). */
  private servedRef = "";
  private loading = false;
  private stopped = false;

  constructor(
    private readonly options: EmbeddedOptions,
    private readonly logger: Logger,
  ) {}

  info(): EngineInfo {
    const m = this.serving?.model;
    return {
      engine: Engine.ENGINE_LLAMACPP,
      adapter: "llamacpp-embedded",
      engineVersion: this.runtime?.engineVersion ?? "",
      modelRef: this.serving ? this.servedRef : this.options.modelRef,
      modelDigest: m?.digest ?? "",
      ctxMax: m?.contextSize ?? this.options.ctx,
      workloads: m ? workloadsOf(m.kind) : [],
      deviceMask: this.options.deviceMask || (this.runtime?.backend ?? "cpu"),
      vramTotalBytes: 0,
      vramFreeBytes: 0,
      servesAnyModel: false,
      // The same seed gives the same tokens on every slot: sampling is seeded per generation, and a slot's cache never changes logits.
      features: {
        seed: "true",
        cancel: "abort",
        determinism: "all-slots",
        kv_reuse: "session",
        evict: "sequence",
        ...(m && m.kind !== "generation" ? {} : samplingFeatures(EMBEDDED_HONOURED)),
      },
    };
  }

  health(): WorkerHealth {
    return this.engineHealth.current;
  }

  onHealthChange(listener: (health: WorkerHealth) => void): () => void {
    return this.engineHealth.onChange(listener);
  }

  slotsTotal(): number {
    return this.options.slots;
  }

  /** Tokens held in the sequences' KV caches over their capacity; generation models only. */
  kvCacheUsageRatio(): number | undefined {
    const slots = this.serving?.model.slots;
    if (slots?.kind !== "generation") return undefined;
    const held = slots.pool.slots.reduce((n, s) => n + s.nextTokenIndex, 0);
    return held / (slots.pool.total * (this.serving?.model.contextSize ?? 1));
  }

  async evictSession(sessionId: string): Promise<boolean> {
    const slots = this.serving?.model.slots;
    if (slots?.kind !== "generation") return false;
    const sequence = slots.pool.forget(sessionId);
    if (!sequence) return false;
    await sequence.clearHistory();
    return true;
  }

  async start(): Promise<void> {
    this.engineHealth.set({ live: true, ready: false, lastError: `loading ${this.options.modelRef}` });
    try {
      this.runtime = await llamaRuntime(this.options.gpu, this.logger);
      await this.switchTo(this.options.modelRef, this.options.modelPath);
      this.engineHealth.set({ live: true, ready: true, lastError: "" });
    } catch (err) {
      this.engineHealth.set({ live: true, ready: false, lastError: `failed to load ${this.options.modelRef}: ${(err as Error).message}` });
      throw err;
    }
  }

  /** Loads the new model beside the old one, then swaps; the old one keeps serving if anything fails. */
  async loadModel(modelRef: string): Promise<void> {
    // Checked before the first await, so two calls in one tick cannot both load.
    if (this.loading) throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, "a model load is already in progress");
    if (!this.runtime || this.stopped)
      throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, "the engine is not running");
    this.engineHealth.set({ live: true, ready: false, lastError: `loading ${modelRef}` });
    try {
      await this.switchTo(modelRef);
    } catch (err) {
      const failure = new WorkerFailure(
        WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST,
        `failed to load ${modelRef}: ${(err as Error).message}; still serving ${this.servedRef}`,
      );
      this.engineHealth.set({ live: true, ready: this.serving !== undefined, lastError: failure.message });
      throw failure;
    }
    this.engineHealth.set({ live: true, ready: true, lastError: "" });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const serving = this.serving;
    this.serving = undefined;
    this.engineHealth.set({ live: false, ready: false, lastError: "stopped" });
    if (serving) await this.retire(serving);
  }

  async generate(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    const serving = this.serving;
    if (!serving || !this.engineHealth.current.ready)
      throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, "the model is not loaded");
    serving.running++;
    try {
      return await this.run(serving.model, request, signal, sink);
    } finally {
      serving.running--;
      if (serving.retired && serving.running === 0) void this.dispose(serving);
    }
  }

  private async run(model: EmbeddedModel, request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    const slots = model.slots;
    const wanted = request.workload === Workload.WORKLOAD_UNSPECIFIED ? Workload.WORKLOAD_COMPLETION : request.workload;
    if (!workloadsOf(model.kind).includes(wanted)) {
      throw new WorkerFailure(
        WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST,
        `${this.servedRef} is a ${model.kind} model; it does not run ${workloads.name(wanted)} tasks`,
        false,
      );
    }
    const session = request.sessionId;
    // A model is served only once the runtime loaded it.
    const runtime = this.runtime!;
    if (slots.kind === "generation") {
      refuseUnhonoured(request, EMBEDDED_HONOURED);
      return withSlot(slots.pool, session, (seq) => generateOnSequence(runtime, seq, model.contextSize, request, signal, sink));
    }
    if (slots.kind === "embedding") return withSlot(slots.pool, session, (c) => embed(c, model.contextSize, request, signal, sink));
    return withSlot(slots.pool, session, (c) => rerank(c, model.contextSize, request, signal, sink));
  }

  private async switchTo(modelRef: string, file?: string): Promise<void> {
    if (!this.runtime) throw new Error("the llama.cpp runtime is not loaded");
    this.loading = true;
    try {
      const path = file ?? this.localPath(modelRef);
      const { slots, ctx: contextSize, threads, gpuLayers } = this.options;
      const model = await loadEmbeddedModel(this.runtime, path, { slots, contextSize, threads, gpuLayers }, this.options.onLoadProgress);
      if (this.stopped) {
        await model.dispose();
        throw new Error("the engine stopped while loading");
      }
      const previous = this.serving;
      this.serving = { model, running: 0, retired: false };
      this.servedRef = modelRef;
      this.logger.info(
        { event: "model_loaded", model_ref: modelRef, model_digest: model.digest, kind: model.kind, ctx: model.contextSize, slots },
        `loaded ${modelRef} (${model.kind}, ${slots} slots of ${model.contextSize} tokens)`,
      );
      if (previous) await this.retire(previous);
    } finally {
      this.loading = false;
    }
  }

  /** The file a model_ref names; only local files for now (file: or a plain path). */
  private localPath(modelRef: string): string {
    // A malformed ref throws ModelRefError, whose message says which forms are accepted.
    const path = localPathOf(parseModelRef(modelRef), this.options.baseDir);
    if (!path) throw new Error(`the embedded engine loads local GGUF files (file:/path/model.gguf); ${modelRef} is not one`);
    return resolve(path);
  }

  /** A replaced model is freed once no generation runs on it any more. */
  private async retire(serving: Serving): Promise<void> {
    serving.retired = true;
    if (serving.running === 0) await this.dispose(serving);
  }

  private async dispose(serving: Serving): Promise<void> {
    try {
      await serving.model.dispose();
    } catch (err) {
      this.logger.warn({ err, event: "model_dispose_failed" }, `freeing ${serving.model.path} failed`);
    }
  }
}
