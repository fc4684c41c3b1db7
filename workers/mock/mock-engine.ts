import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Engine, StopReason, Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest, type WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import { untilAborted, waitOrAbort, yieldOrAbort } from "../abortable-wait.js";
import { EngineHealth } from "../engine/engine-health.js";
import {
  WorkerFailure,
  workerErrorKinds,
  type EngineAdapter,
  type EngineInfo,
  type GenerationResult,
  type GenerationSink,
} from "../engine-adapter.js";
import { parseMockDirectives, type MockBehaviour } from "./mock-directive.js";
import { countPromptTokens, MockTokenSource } from "./mock-tokens.js";
import { MOCK_SAMPLING_FIELDS, renderMockChat, samplingKey } from "./mock-sampling.js";
import { StopMatcher } from "../engine/stop-matcher.js";

export interface MockEngineOptions extends MockBehaviour {
  /** The public engine family this mock stands in for: core places tasks for that engine here. */
  engine: Engine;
  modelRef: string;
  /** Accept any model_ref, so one mock replica can stand in for a whole catalog. */
  servesAnyModel: boolean;
  deviceMask: string;
  slots: number;
  ctxMax: number;
  /** Simulated model load time: live but not ready until it elapses. */
  loadMs: number;
  /** Simulated time LoadModel takes to switch models (not ready meanwhile), whether it then succeeds or fails. */
  reloadMs: number;
  /** Model refs LoadModel fails to load (after reloadMs), leaving the previous model serving. */
  rejectModels: readonly string[];
}

export const MOCK_DEFAULTS: MockEngineOptions = {
  engine: Engine.ENGINE_LLAMACPP,
  modelRef: "mock:tiny",
  servesAnyModel: true,
  deviceMask: "cpu",
  slots: 4,
  ctxMax: 8192,
  tokensPerSecond: 0,
  failKind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR,
  slowStartMs: 0,
  loadMs: 0,
  reloadMs: 200,
  rejectModels: [],
};

/**
 * At full speed a tick emits this many tokens and then yields to the event
 * loop, so one fast generation cannot starve the others or the gRPC I/O.
 */
const MAX_TOKENS_PER_TICK = 64;

/**
 * An engine without a model: deterministic text from (prompt, seed), a token
 * rate, and fault injection (configured for every task, or per task through
 * the prompt directive documented in mock-directive.ts).
 */
const MAX_SESSIONS_REMEMBERED = 4096;

export class MockEngine implements EngineAdapter {
  private readonly options: MockEngineOptions;
  /** Replaced (never mutated) by a successful loadModel, so a caller's copy stays consistent. */
  private currentInfo: EngineInfo;
  private readonly engineHealth = new EngineHealth();
  /** The model load under way (the initial one from start() or a loadModel), if any. */
  private loading: { finish(completed: boolean): void } | undefined;

  constructor(options: Partial<MockEngineOptions> = {}) {
    this.options = { ...MOCK_DEFAULTS, ...options };
    this.currentInfo = this.infoFor(this.options.modelRef);
  }

  info(): EngineInfo {
    return this.currentInfo;
  }

  private infoFor(modelRef: string): EngineInfo {
    const { engine, servesAnyModel, deviceMask, ctxMax } = this.options;
    return {
      engine,
      adapter: "mock",
      engineVersion: `mock-${packageVersion()}`,
      modelRef,
      modelDigest: `sha256:${createHash("sha256").update(modelRef).digest("hex")}`,
      ctxMax,
      workloads: [Workload.WORKLOAD_COMPLETION],
      deviceMask,
      vramTotalBytes: 0,
      vramFreeBytes: 0,
      servesAnyModel,
      features: {
        seed: "true",
        cancel: "abort",
        fault_injection: "prompt-directive",
        sampling: MOCK_SAMPLING_FIELDS.join(","),
        chat: "template",
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

  // No kvCacheUsageRatio: the mock has no KV cache, and a made-up figure would mislead whoever reads props.

  /**
   * The mock's stand-in for per-session KV state: which sessions it served,
   * most recent last, bounded so a long-lived mock does not grow.
   */
  private readonly sessionsSeen = new Set<string>();

  evictSession(sessionId: string): Promise<boolean> {
    return Promise.resolve(this.sessionsSeen.delete(sessionId));
  }

  private rememberSession(sessionId: string): void {
    if (!sessionId) return;
    this.sessionsSeen.delete(sessionId);
    this.sessionsSeen.add(sessionId);
    if (this.sessionsSeen.size > MAX_SESSIONS_REMEMBERED) {
      for (const oldest of this.sessionsSeen) {
        this.sessionsSeen.delete(oldest);
        break;
      }
    }
  }

  async start(): Promise<void> {
    const { loadMs, modelRef } = this.options;
    if (loadMs <= 0) {
      this.engineHealth.set({ live: true, ready: true, lastError: "" });
      return;
    }
    this.engineHealth.set({ live: true, ready: false, lastError: `loading ${modelRef}` });
    if (await this.simulateLoad(loadMs)) this.engineHealth.set({ live: true, ready: true, lastError: "" });
  }

  /**
   * Switches to `modelRef` after `reloadMs`. Generations already running
   * finish (the mock has no weights to swap under them); new ones are refused
   * while it loads, because health is not ready. A ref in `rejectModels` fails
   * after the same delay and the previous model keeps serving.
   */
  async loadModel(modelRef: string): Promise<void> {
    // Both checks run before the first await, so two calls in the same tick cannot both start a load.
    if (this.loading) throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, "a model load is already in progress");
    if (!this.engineHealth.current.live)
      throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, "mock engine is not running");
    this.engineHealth.set({ live: true, ready: false, lastError: `loading ${modelRef}` });
    if (!(await this.simulateLoad(this.options.reloadMs))) {
      throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, `the engine stopped while loading ${modelRef}`);
    }
    if (this.options.rejectModels.includes(modelRef)) {
      const failure = new WorkerFailure(
        WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST,
        `failed to load ${modelRef}: the mock is configured to reject it (--reject-models); still serving ${this.currentInfo.modelRef}`,
      );
      this.engineHealth.set({ live: true, ready: true, lastError: failure.message });
      throw failure;
    }
    this.currentInfo = this.infoFor(modelRef);
    this.engineHealth.set({ live: true, ready: true, lastError: "" });
  }

  /** Waits `ms` as the one load in progress; resolves false when stop() cut it short. */
  private simulateLoad(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const finish = (completed: boolean): void => {
        clearTimeout(timer);
        this.loading = undefined;
        resolve(completed);
      };
      const timer = setTimeout(() => finish(true), Math.max(0, ms));
      this.loading = { finish };
    });
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- nothing to wait for, but a throwing listener must still reject stop()
  async stop(): Promise<void> {
    this.loading?.finish(false);
    this.engineHealth.set({ live: false, ready: false, lastError: "stopped" });
  }

  async generate(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    const { prompt, overrides } = parseMockDirectives(request.messages.length > 0 ? renderMockChat(request.messages) : request.prompt);
    if (!this.engineHealth.current.ready)
      throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, "mock engine is not ready");
    this.rememberSession(request.sessionId);
    return this.run(prompt, request, { ...this.options, ...overrides }, signal, sink);
  }

  private async run(
    prompt: string,
    request: SubmitRequest,
    behaviour: MockBehaviour,
    signal: AbortSignal,
    sink: GenerationSink,
  ): Promise<GenerationResult> {
    const { tokensPerSecond: rate, failAfter, hangAfter, slowStartMs } = behaviour;
    const canceled = { stopReason: StopReason.STOP_REASON_CANCELED };
    sink.started(countPromptTokens(prompt));
    if (slowStartMs > 0 && !(await waitOrAbort(slowStartMs, signal))) return canceled;

    const source = new MockTokenSource(prompt + samplingKey(request.sampling), request.seed ?? 0);
    const stops = request.sampling?.stop.length ? new StopMatcher(request.sampling.stop) : undefined;
    const limit = Math.min(request.maxTokens, failAfter ?? Infinity, hangAfter ?? Infinity);
    const t0 = performance.now();
    let produced = 0;
    // One iteration per tick: emit everything due since the last tick as one batch, then wait.
    while (produced < limit) {
      if (signal.aborted) return canceled;
      const due =
        rate > 0
          ? Math.min(limit, Math.floor(((performance.now() - t0) * rate) / 1000) + 1)
          : Math.min(limit, produced + MAX_TOKENS_PER_TICK);
      if (due > produced) {
        const texts = new Array<string>(due - produced);
        for (let i = 0; i < texts.length; i++) texts[i] = source.next();
        produced = due;
        if (!stops) sink.tokens(texts);
        else if (emitUntilStop(stops, texts, sink))
          return { stopReason: StopReason.STOP_REASON_STOP, decodeTimeMs: Math.round(performance.now() - t0) };
      }
      if (produced >= limit) break;
      const continued =
        rate > 0 ? await waitOrAbort(Math.max(1, (produced * 1000) / rate - (performance.now() - t0)), signal) : await yieldOrAbort(signal);
      if (!continued) return canceled;
    }

    // A fault at N tokens only strikes a generation that wanted more than N.
    const wantedMore = produced < request.maxTokens;
    if (wantedMore && failAfter !== undefined && produced >= failAfter) {
      throw new WorkerFailure(
        behaviour.failKind,
        `mock ${workerErrorKinds.name(behaviour.failKind)} after ${produced} tokens (fault injection)`,
      );
    }
    if (wantedMore && hangAfter !== undefined && produced >= hangAfter) {
      await untilAborted(signal);
      return canceled;
    }
    if (stops) emit(sink, stops.flush());
    return { stopReason: StopReason.STOP_REASON_MAX_TOKENS, decodeTimeMs: Math.round(performance.now() - t0) };
  }
}

/** Passes a batch through the stop matcher; true when a stop string ended the generation. */
function emitUntilStop(stops: StopMatcher, texts: readonly string[], sink: GenerationSink): boolean {
  const out: string[] = [];
  for (const text of texts) {
    const step = stops.push(text);
    out.push(...step.texts);
    if (step.stopped) {
      emit(sink, out);
      return true;
    }
  }
  emit(sink, out);
  return false;
}

function emit(sink: GenerationSink, texts: string[]): void {
  if (texts.length > 0) sink.tokens(texts);
}

let cachedVersion: string | undefined;

/** The project's version, so the mock's engine_version moves with releases (it is part of determinism). */
function packageVersion(): string {
  if (cachedVersion) return cachedVersion;
  try {
    const manifest = JSON.parse(readFileSync(join(projectRoot(), "package.json"), "utf8")) as { version?: string };
    cachedVersion = manifest.version ?? "1.0";
  } catch {
    cachedVersion = "1.0";
  }
  return cachedVersion;
}
