// The model a sidecar's engine serves, and every change of it: the first
// start, LoadModel, the unload after --model-ttl of idleness and the reload
// the next task triggers. One owner for all of it, shared by every engine the
// sidecar runs itself (a supervised llama.cpp, vLLM or TGI server, whose
// processes load one model each, and the embedded llama.cpp): the model is
// provisioned, checked against the replica's memory, and started as a new
// engine instance beside the running one or in its place (switch-plan.ts);
// traffic moves once the new one is Ready; on any failure the old model keeps,
// or resumes, serving.
import type { LoadProgress } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest, type WorkerHealth, type WorkerLoadState } from "../../contracts/gen/llama_orch/v1/worker.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { untilAborted } from "../abortable-wait.js";
import { ChangeListeners } from "../change-listeners.js";
import { WorkerFailure, type EngineAdapter, type EngineInfo, type GenerationResult, type GenerationSink } from "../engine-adapter.js";
import { ProvisionError } from "../provision/provision-error.js";
import { EngineInstance } from "./engine-instance.js";
import { IdleTimer } from "./idle-timer.js";
import { loadFailureReason } from "./load-failure.js";
import { engineLoadProgress, idleSentence, loadProgressOf, progressSentence } from "./load-progress.js";
import type { ModelPreparer, PreparedModel } from "./model-preparer.js";
import type { PlannedModel, SwitchPlan } from "./switch-plan.js";

/** The engine instances a switcher starts: supervised processes, or embedded models (engine-instances.ts). */
export interface EngineInstances {
  /** Info and capacity before any instance runs; whether instances can evict a session's KV cache. */
  readonly blank: { info: EngineInfo; slots: number; evicts: boolean };
  /** Whether instances load the files the sidecar provisions; false: the engine gets its model itself, and cannot switch. */
  readonly loadsFiles: boolean;
  /** Why a second instance cannot run beside the first; undefined when it can. */
  readonly besideBlocked: string | undefined;
  /**
   * A new instance on `model`, not started. `firstStart`: the sidecar's own start, where a crashing engine is
   * restarted rather than given up. `onLoadProgress`: for an engine that can say how far its start has loaded the file.
   */
  create(
    model: PreparedModel,
    how: { firstStart: boolean; onLoadProgress?: (bytesDone: number, bytesTotal: number) => void },
  ): Promise<EngineAdapter>;
}

export interface SwitcherOptions {
  /** --model: what the first start loads. */
  modelRef: string;
  instances: EngineInstances;
  preparer: Pick<ModelPreparer, "prepare">;
  /** The switch plan on the replica's hardware as it is now. */
  plan(next: PlannedModel, running: PlannedModel | undefined, besideBlocked: string | undefined): SwitchPlan;
  /** --model-ttl. */
  ttlMs?: number;
  logger: Logger;
}

type Phase = "new" | "loading" | "serving" | "failed" | "unloaded" | "stopped";
type Why = "start" | "switch" | "wake";

export class ModelSwitcher implements EngineAdapter {
  readonly loadModel?: EngineAdapter["loadModel"];
  readonly evictSession?: EngineAdapter["evictSession"];
  private phase: Phase = "new";
  private why: Why = "start";
  private current: EngineInstance | undefined;
  /** The instance starting now, stopped with the switcher. */
  private starting: EngineInstance | undefined;
  private readonly retiring = new Set<EngineInstance>();
  /** What serves now, or was unloaded; undefined before the first load. */
  private model: PreparedModel | undefined;
  private loadingRef = "";
  private progress: LoadProgress | undefined;
  /** last_error while loading, failed or unloaded. */
  private status = "";
  /** A failed switch's sentence, shown while the old model serves on, until a load succeeds. */
  private failureNote = "";
  private wakeFlight: Promise<void> | undefined;
  private lastInfo: EngineInfo;
  private lastSlots: number;
  private readonly idle: IdleTimer;
  private readonly stopping = new AbortController();
  private readonly changes = new ChangeListeners<WorkerHealth>();
  private lastSent = "";

  constructor(private readonly o: SwitcherOptions) {
    this.lastInfo = { ...o.instances.blank.info, modelRef: o.modelRef };
    this.lastSlots = o.instances.blank.slots;
    this.idle = new IdleTimer(o.ttlMs, () => void this.unload());
    if (o.instances.loadsFiles) this.loadModel = (ref, options) => this.switchTo(ref, options?.expectedDigest);
    if (o.instances.blank.evicts) this.evictSession = (id) => this.current?.adapter.evictSession?.(id) ?? Promise.resolve(false);
  }

  info(): EngineInfo {
    const base = this.current?.adapter.info() ?? this.lastInfo;
    const model = this.current?.model ?? this.model;
    if (!model) return base;
    return { ...base, modelRef: model.ref, modelDigest: base.modelDigest || model.digest || "" };
  }

  health(): WorkerHealth {
    switch (this.phase) {
      case "new":
        return { live: false, ready: false, lastError: "not started" };
      case "stopped":
        return { live: false, ready: false, lastError: "stopped" };
      case "loading":
      case "failed":
      case "unloaded":
        return { live: true, ready: false, lastError: this.status };
    }
    const health = this.current!.adapter.health();
    return health.ready && this.failureNote ? { ...health, lastError: this.failureNote } : health;
  }

  loadState(): WorkerLoadState | undefined {
    const wakesOnSubmit = this.phase === "unloaded" || (this.phase === "loading" && this.why === "wake");
    if (!this.progress && !wakesOnSubmit) return undefined;
    return { progress: this.progress, wakesOnSubmit };
  }

  onHealthChange(listener: (health: WorkerHealth) => void): () => void {
    return this.changes.add(listener);
  }

  slotsTotal(): number {
    return this.current?.adapter.slotsTotal() ?? this.lastSlots;
  }

  kvCacheUsageRatio(): number | undefined {
    return this.current?.adapter.kvCacheUsageRatio?.();
  }

  async start(): Promise<void> {
    if (this.phase !== "new") throw new Error(`the model switcher is ${this.phase}; it starts once`);
    await this.load(this.o.modelRef, undefined, "start");
  }

  async stop(): Promise<void> {
    this.phase = "stopped";
    this.idle.disarm();
    this.progress = undefined;
    this.stopping.abort();
    const instances = [this.current, this.starting, ...this.retiring].filter((i) => i !== undefined);
    this.current = undefined;
    this.emit();
    await Promise.all(instances.map((i) => i.stop()));
  }

  /** Runs on the serving instance; a model unloaded for idleness is loaded first (the generation's started waits for it). */
  async generate(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    if (this.phase === "unloaded" || (this.phase === "loading" && this.why === "wake")) await this.wake(signal);
    const instance = this.current;
    if (!instance || this.phase !== "serving")
      throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, `the model is not loaded: ${this.health().lastError}`);
    this.idle.begin();
    try {
      return await instance.generate(request, signal, sink);
    } finally {
      this.idle.end();
    }
  }

  private async switchTo(ref: string, expectedDigest: string | undefined): Promise<void> {
    if (this.phase === "loading")
      throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, "a model load is already in progress");
    if (this.phase === "new" || this.phase === "stopped")
      throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, "the engine is not running");
    await this.load(ref, expectedDigest, "switch");
  }

  /** One wake for every task that arrives while the model is unloaded; a task cancelled meanwhile stops waiting, the load goes on. */
  private async wake(signal: AbortSignal): Promise<void> {
    const model = this.model!;
    this.wakeFlight ??= this.load(model.ref, model.expectedDigest, "wake").finally(() => (this.wakeFlight = undefined));
    const woken = await Promise.race([this.wakeFlight.then(() => true), untilAborted(signal).then(() => false)]).catch((err: Error) => {
      throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, err.message, true, { cause: err });
    });
    if (!woken)
      throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, "cancelled while the model was loading", true);
  }

  /** Provision, plan, start, switch: the one path every load takes. Rejects with the WorkerFailure LoadModel answers with. */
  private async load(ref: string, expectedDigest: string | undefined, why: Why): Promise<void> {
    const old = this.current;
    const before = this.phase;
    this.begin(ref, why);
    try {
      const model = await this.prepare(ref, expectedDigest);
      const plan = this.o.plan(planned(model), old && planned(old.model), this.o.instances.besideBlocked);
      this.logPlan(plan, ref, old);
      if (plan.action === "refuse") throw new Error(plan.reason);
      this.progress = engineLoadProgress(ref);
      this.status = `loading ${ref}`;
      this.emit();
      const next = plan.action === "stop-first" && old ? await this.replace(old, model) : await this.startInstance(model, why === "start");
      this.serve(next, old, plan, why);
    } catch (err) {
      throw this.failed(ref, err, why, before);
    }
  }

  /** The engine's own word on loading `ref`'s file, shown while that load runs: at most once per percent. */
  private engineLoaded(ref: string, bytesDone: number, bytesTotal: number): void {
    if (this.phase !== "loading" || this.loadingRef !== ref || bytesTotal <= 0) return;
    const percent = (p: LoadProgress | undefined) => (p?.bytesTotal ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : -1);
    const next = engineLoadProgress(ref, { bytesDone, bytesTotal });
    if (this.progress?.phase === "loading" && percent(this.progress) === percent(next)) return;
    this.progress = next;
    this.status = progressSentence(ref, next);
    this.emit();
  }

  private begin(ref: string, why: Why): void {
    this.phase = "loading";
    this.why = why;
    this.loadingRef = ref;
    this.progress = engineLoadProgress(ref);
    this.status = `loading ${ref}`;
    this.idle.disarm();
    this.emit();
  }

  private async prepare(ref: string, expectedDigest: string | undefined): Promise<PreparedModel> {
    if (!this.o.instances.loadsFiles) return { ref, path: undefined, digest: undefined, expectedDigest, memory: undefined };
    const model = await this.o.preparer.prepare(ref, {
      expectedDigest,
      signal: this.stopping.signal,
      onProgress: (p) => {
        if (this.phase !== "loading" || this.loadingRef !== ref) return;
        this.progress = loadProgressOf(ref, p);
        this.status = progressSentence(ref, this.progress);
        this.emit();
      },
    });
    this.stillRunning();
    return model;
  }

  /** Stop-first: the old instance ends once its generations have, then the new one starts; if it fails, the old model starts again. */
  private async replace(old: EngineInstance, model: PreparedModel): Promise<EngineInstance> {
    await old.whenIdle();
    this.remember(old);
    this.current = undefined;
    await old.stop();
    try {
      return await this.startInstance(model, false);
    } catch (err) {
      if (this.phase === "stopped") throw err;
      const again = await this.resume(old.model, model.ref);
      const reason = loadFailureReason(model.ref, err);
      const outcome =
        again === undefined
          ? ` (${old.model.ref} was stopped first and serves again)`
          : `; starting ${old.model.ref} again failed too: ${loadFailureReason(old.model.ref, again)}`;
      throw new Error(`${reason}${outcome}`, { cause: err });
    }
  }

  /** The old model back after a stop-first switch failed; resolves with the error when it does not start either. */
  private async resume(model: PreparedModel, failedRef: string): Promise<unknown> {
    this.o.logger.warn(
      { event: "model_resume", model_ref: model.ref, failed_model_ref: failedRef },
      `${failedRef} did not start; starting ${model.ref} again`,
    );
    try {
      this.current = await this.startInstance(model, false);
      this.current.watch(() => this.emit());
      return undefined;
    } catch (err) {
      return err;
    }
  }

  private async startInstance(model: PreparedModel, firstStart: boolean): Promise<EngineInstance> {
    const onLoadProgress = (bytesDone: number, bytesTotal: number) => this.engineLoaded(model.ref, bytesDone, bytesTotal);
    const instance = new EngineInstance(await this.o.instances.create(model, { firstStart, onLoadProgress }), model);
    this.starting = instance;
    try {
      this.stillRunning();
      await instance.adapter.start();
      this.stillRunning();
      return instance;
    } catch (err) {
      await instance.stop().catch(() => undefined);
      throw err;
    } finally {
      this.starting = undefined;
    }
  }

  private serve(next: EngineInstance, old: EngineInstance | undefined, plan: SwitchPlan, why: Why): void {
    this.current = next;
    this.model = next.model;
    this.phase = "serving";
    this.progress = undefined;
    this.status = "";
    this.failureNote = "";
    next.watch(() => this.emit());
    this.emit();
    this.idle.arm();
    if (why === "wake") this.o.logger.info({ event: "model_reloaded", model_ref: next.model.ref }, `${next.model.ref} is loaded again`);
    if (old && old !== next && plan.action === "beside") void this.retire(old);
  }

  /** A replaced instance ends once its generations have (they finish on the old model). */
  private async retire(old: EngineInstance): Promise<void> {
    this.retiring.add(old);
    try {
      await old.retire();
    } catch (err) {
      this.o.logger.warn({ err, event: "engine_stop_failed", model_ref: old.model.ref }, `stopping the engine of ${old.model.ref} failed`);
    } finally {
      this.retiring.delete(old);
    }
  }

  /** Where a failed load leaves the sidecar, and the failure LoadModel (or the waiting task) gets. */
  private failed(ref: string, err: unknown, why: Why, before: Phase): WorkerFailure {
    const reason = loadFailureReason(ref, err);
    const cause = err instanceof Error && err.cause instanceof ProvisionError ? err.cause : err;
    const retriable = cause instanceof ProvisionError && cause.retriable;
    let message = `failed to load ${ref}: ${reason}`;
    this.progress = undefined;
    if (this.phase === "stopped") message = `${message} (the worker is stopping)`;
    else if (this.current) {
      this.phase = "serving";
      message = this.failureNote = `${message}; still serving ${this.current.model.ref}`;
      this.idle.arm();
    } else if (before === "unloaded" || why === "wake") {
      this.phase = "unloaded";
      this.status = `${idleSentence(this.o.ttlMs ?? 0)}; loading ${ref} failed: ${reason}`;
    } else {
      this.phase = "failed";
      this.status = message;
    }
    this.emit();
    return new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST, message, retriable, { cause });
  }

  /** --model-ttl passed with nothing running: the engine is stopped (its memory freed) until the next task. */
  private async unload(): Promise<void> {
    const instance = this.current;
    if (this.phase !== "serving" || !instance || instance.busy > 0) return;
    this.phase = "unloaded";
    this.status = idleSentence(this.o.ttlMs ?? 0);
    this.remember(instance);
    this.current = undefined;
    this.idle.disarm();
    this.emit();
    this.o.logger.info(
      { event: "model_unloaded", model_ref: instance.model.ref, ttl_ms: this.o.ttlMs },
      `${instance.model.ref} ${this.status}`,
    );
    await instance
      .stop()
      .catch((err: unknown) => this.o.logger.warn({ err, event: "engine_stop_failed" }, "stopping the idle engine failed"));
  }

  /** What Info and capacity say while no instance runs: the last one's. */
  private remember(instance: EngineInstance): void {
    this.lastInfo = instance.adapter.info();
    this.lastSlots = instance.adapter.slotsTotal();
  }

  private logPlan(plan: SwitchPlan, ref: string, old: EngineInstance | undefined): void {
    const sentence = {
      start: `starting ${ref}`,
      beside: `starting ${ref} beside ${old?.model.ref}, then switching to it`,
      "stop-first": `stopping ${old?.model.ref} first, then starting ${ref}`,
      refuse: `not loading ${ref}`,
    }[plan.action];
    const log = plan.action === "refuse" ? this.o.logger.warn.bind(this.o.logger) : this.o.logger.info.bind(this.o.logger);
    log(
      { event: "model_switch_plan", model_ref: ref, running_model_ref: old?.model.ref, action: plan.action, reason: plan.reason },
      `${sentence}: ${plan.reason}`,
    );
  }

  private stillRunning(): void {
    if (this.phase === "stopped") throw new Error("the worker stopped while the model loaded");
  }

  /** Tells listeners when health or the load state changed, once per change (progress reports that change neither are dropped). */
  private emit(): void {
    const health = this.health();
    const key = JSON.stringify([health, this.loadState()]);
    if (key === this.lastSent) return;
    this.lastSent = key;
    this.changes.emit(health);
  }
}

function planned(model: PreparedModel): PlannedModel {
  return { ref: model.ref, memory: model.memory };
}
