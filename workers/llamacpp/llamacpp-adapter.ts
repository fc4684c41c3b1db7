import { Engine, Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest, type WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import { ChangeListeners } from "../change-listeners.js";
import { HealthPoller, type ProbeResult } from "../engine/health-poller.js";
import {
  WorkerFailure,
  type EngineAdapter,
  type EngineInfo,
  type GenerationResult,
  type GenerationSink,
} from "../engine-adapter.js";
import { EngineHttp, type RetryPolicy } from "../http/engine-http.js";
import { engineErrorMessage, failureOf } from "../http/engine-errors.js";
import { idleSlotsOf, propsOf, type LlamaCppProps } from "./llamacpp-api.js";
import { streamCompletion } from "./llamacpp-completion.js";
import { parsePromText as parsePrometheusText, sampleValue } from "../http/prometheus-text.js";
import type { HttpEngineOptions } from "../http/engine-options.js";

export type { HttpEngineOptions };

/** Timeouts and thresholds; the defaults suit a real engine, tests shorten them. */
export interface LlamaCppTuning {
  /** Default 5_000. */
  connectTimeoutMs?: number;
  /** Until /completion's response headers, which llama.cpp may send only with the first token; default 300_000. */
  headersTimeoutMs?: number;
  /** Longest silence inside a stream before the generation fails with TIMEOUT; default 60_000. */
  idleTimeoutMs?: number;
  /** Connect retries for /completion (nothing was sent yet); default 3 tries from 100 ms. */
  retry?: RetryPolicy;
  /** A poll (health, props, slots, metrics) slower than this counts as failed; default 5_000. */
  probeTimeoutMs?: number;
  /** Failed polls in a row before a ready engine is reported down; default 3. */
  failureThreshold?: number;
}

const HEALTH_PATH = "/health";
const PROPS_PATH = "/props";
const SLOTS_PATH = "/slots";
const METRICS_PATH = "/metrics";
/** What llama.cpp answers for /slots without --slots and /metrics without --metrics (404 on old builds). */
const NOT_ENABLED = new Set([404, 501]);
/** Failures that suggest the engine went away: check its health now rather than at the next poll. */
const PROBE_AFTER = new Set([WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, WorkerErrorKind.WORKER_ERROR_KIND_RESET]);
const STOPPED: WorkerHealth = { live: false, ready: false, lastError: "stopped" };

/**
 * Drives a llama.cpp server (`llama-server`) that runs elsewhere: generations
 * through POST /completion streamed as SSE, health from GET /health, facts
 * from GET /props, free slots from GET /slots and the KV-cache fill from
 * GET /metrics (when started with --metrics). Cancel closes the HTTP request,
 * which frees the engine's slot.
 *
 * Determinism: the same prompt, seed and max_tokens give the same tokens only
 * when the server runs one request at a time (`--parallel 1`): with several
 * slots, continuous batching puts concurrent requests in the same batches and
 * the numerics vary with the batch. `features.determinism` says "single-slot"
 * when /props reports total_slots 1, else "best_effort". Requests set
 * cache_prompt (reuse a slot's KV cache for a shared prompt prefix), which
 * llama.cpp's README warns may change logits on some backends; seen identical
 * on the single-slot server the issue was tested on.
 */
export class LlamaCppAdapter implements EngineAdapter {
  private readonly http: EngineHttp;
  /** Polls go through their own client without retries: the poller's thresholds are the smoothing. */
  private readonly polls: EngineHttp;
  private readonly poller: HealthPoller;
  private readonly probeTimeoutMs: number;
  private readonly healthChanges = new ChangeListeners<WorkerHealth>();
  private readonly readyWaiters: Array<() => void> = [];
  /** Replaced, never mutated, when /props changes, so a caller's copy stays consistent. */
  private currentInfo: EngineInfo;
  private props: LlamaCppProps | undefined;
  /** From GET /slots; undefined while unknown or when the endpoint is disabled. */
  private idleSlots: number | undefined;
  private kvUsage: number | undefined;
  private deferred: number | undefined;
  /** Set when the engine answered 404/501; asked again after the engine was down (it may restart with other flags). */
  private slotsDisabled = false;
  private metricsDisabled = false;
  /** Our own generations in flight: free slots when /slots is disabled. */
  private running = 0;
  private probing = false;
  private polling = false;
  private stopped = false;

  constructor(
    private readonly opts: HttpEngineOptions,
    tuning: LlamaCppTuning = {},
  ) {
    const headers = opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : undefined;
    const secrets = opts.apiKey ? [opts.apiKey] : [];
    this.http = new EngineHttp({
      baseUrl: opts.baseUrl,
      headers,
      secrets,
      connectTimeoutMs: tuning.connectTimeoutMs,
      headersTimeoutMs: tuning.headersTimeoutMs ?? 300_000,
      idleTimeoutMs: tuning.idleTimeoutMs,
      retry: tuning.retry,
    });
    this.probeTimeoutMs = tuning.probeTimeoutMs ?? 5_000;
    this.polls = new EngineHttp({
      baseUrl: opts.baseUrl,
      headers,
      secrets,
      connectTimeoutMs: Math.min(tuning.connectTimeoutMs ?? 5_000, this.probeTimeoutMs),
      headersTimeoutMs: this.probeTimeoutMs,
      idleTimeoutMs: this.probeTimeoutMs,
      retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
    });
    this.poller = new HealthPoller({
      probe: (signal) => this.probe(signal),
      intervalMs: opts.pollIntervalMs ?? 2_000,
      failureThreshold: tuning.failureThreshold ?? 3,
      probeTimeoutMs: this.probeTimeoutMs,
    });
    this.poller.onChange((health) => this.healthChanged(health));
    this.currentInfo = this.infoFor(undefined);
  }

  info(): EngineInfo {
    return this.currentInfo;
  }

  health(): WorkerHealth {
    return this.stopped ? STOPPED : this.poller.current();
  }

  onHealthChange(listener: (health: WorkerHealth) => void): () => void {
    return this.healthChanges.add(listener);
  }

  /**
   * `slots` when configured, else /props' total_slots, else 1 until /props
   * has answered: the sidecar may size its slot pool before start().
   */
  slotsTotal(): number {
    return this.opts.slots ?? (this.props && this.props.totalSlots > 0 ? this.props.totalSlots : 1);
  }

  /** Idle slots per GET /slots; without it, slotsTotal() minus this adapter's own running generations. */
  slotsFree(): number {
    return this.idleSlots ?? Math.max(0, this.slotsTotal() - this.running);
  }

  /** Requests the engine holds back for want of a slot (`llamacpp:requests_deferred`), when /metrics is on. */
  requestsWaiting(): number | undefined {
    return this.deferred;
  }

  /** `llamacpp:kv_cache_usage_ratio` from GET /metrics; undefined without --metrics and on builds that dropped the gauge. */
  kvCacheUsageRatio(): number | undefined {
    return this.kvUsage;
  }

  /** The latest GET /props as read (model_path included), for diagnostics. */
  engineProps(): LlamaCppProps | undefined {
    return this.props;
  }

  /** Starts polling; resolves once the engine is ready (or stop() is called first). */
  async start(): Promise<void> {
    if (this.stopped) throw new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, "the llama.cpp adapter was stopped");
    const ready = new Promise<void>((resolve) => this.readyWaiters.push(resolve));
    if (!this.polling) {
      this.polling = true;
      await this.poller.start();
    }
    if (this.health().ready) this.wakeStarters();
    return ready;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.polling = false;
    this.poller.stop();
    // Destroys in-flight sockets too: running generations fail with RESET, which the sidecar expects on stop.
    this.http.close();
    this.polls.close();
    this.wakeStarters();
    this.healthChanges.emit(STOPPED);
  }

  async generate(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    this.running++;
    try {
      return await streamCompletion(this.http, request, signal, sink);
    } catch (err) {
      if (err instanceof WorkerFailure && PROBE_AFTER.has(err.kind)) this.probeSoon();
      throw err;
    } finally {
      this.running--;
    }
  }

  private infoFor(props: LlamaCppProps | undefined): EngineInfo {
    return {
      engine: Engine.ENGINE_LLAMACPP,
      adapter: "llamacpp",
      engineVersion: props?.buildInfo ?? "",
      modelRef: this.opts.modelRef,
      // llama.cpp reports a model path, never a digest of the weights.
      modelDigest: "",
      ctxMax: props?.ctxPerSlot ?? 0,
      workloads: [Workload.WORKLOAD_COMPLETION],
      deviceMask: "",
      vramTotalBytes: 0,
      vramFreeBytes: 0,
      servesAnyModel: false,
      features: {
        seed: "true",
        cancel: "abort",
        cache_prompt: "true",
        determinism: props?.totalSlots === 1 ? "single-slot" : "best_effort",
      },
    };
  }

  /**
   * One poll: GET /health, and while it says ready also /props, /slots and
   * /metrics, so one timer keeps every figure fresh.
   */
  private async probe(signal: AbortSignal): Promise<ProbeResult> {
    this.probing = true;
    try {
      const { status, text } = await this.polls.get(HEALTH_PATH, { signal, timeoutMs: this.probeTimeoutMs }).catch((err: unknown) => {
        // An aborted poll rejects with the signal's bare AbortError; say what it means.
        throw signal.aborted ? new Error(`GET ${HEALTH_PATH}: no answer within ${this.probeTimeoutMs} ms`) : err;
      });
      if (status === 429 || status === 408) return { outcome: "busy" };
      // llama.cpp answers 503 {"error":{"message":"Loading model"}} until the model is loaded.
      if (status === 503) return { outcome: "loading", detail: this.polls.redact(engineErrorMessage(text)) };
      if (status < 200 || status > 299) return { outcome: "down", detail: failureOf({ path: HEALTH_PATH, status, body: this.polls.redact(text) }).message };
      const denied = await this.refresh(signal);
      return denied ? { outcome: "down", detail: denied } : { outcome: "ready" };
    } finally {
      this.probing = false;
    }
  }

  /**
   * Reads /props, /slots and /metrics; returns why the engine is not ready
   * yet, if so. A figure that cannot be read keeps its last value. A refused
   * API key on /props is returned: /health is public, so this is the only
   * sign that every generation would fail.
   */
  private async refresh(signal: AbortSignal): Promise<string | undefined> {
    const get = (path: string) => this.polls.get(path, { signal, timeoutMs: this.probeTimeoutMs }).catch(() => undefined);
    const [props, slots, metrics] = await Promise.all([
      get(PROPS_PATH),
      this.slotsDisabled ? undefined : get(SLOTS_PATH),
      this.metricsDisabled ? undefined : get(METRICS_PATH),
    ]);
    if (props?.status === 401 || props?.status === 403) {
      return failureOf({ path: PROPS_PATH, status: props.status, body: this.polls.redact(props.text) }).message;
    }
    if (props?.status === 200) this.setProps(propsOf(parseJson(props.text)));
    // Ready means info() and slotsTotal() speak for this engine, so not before /props answered once.
    if (!this.props) return `GET ${PROPS_PATH}: ${props ? `HTTP ${props.status}` : "no answer"}`;
    if (slots) {
      if (NOT_ENABLED.has(slots.status)) this.slotsDisabled = true;
      this.idleSlots = slots.status === 200 ? idleSlotsOf(parseJson(slots.text)) : undefined;
    }
    if (metrics) {
      if (NOT_ENABLED.has(metrics.status)) this.metricsDisabled = true;
      const samples = metrics.status === 200 ? parsePrometheusText(metrics.text) : [];
      this.kvUsage = sampleValue(samples, "llamacpp:kv_cache_usage_ratio");
      this.deferred = sampleValue(samples, "llamacpp:requests_deferred");
    }
    return undefined;
  }

  private setProps(props: LlamaCppProps | undefined): void {
    if (!props) return;
    const old = this.props;
    this.props = props;
    if (old && old.buildInfo === props.buildInfo && old.ctxPerSlot === props.ctxPerSlot && old.totalSlots === props.totalSlots) return;
    this.currentInfo = this.infoFor(props);
  }

  private healthChanged(health: WorkerHealth): void {
    if (!health.ready) {
      // A restarted engine may come back with other flags; what it said about them no longer holds.
      this.slotsDisabled = false;
      this.metricsDisabled = false;
      this.idleSlots = undefined;
      this.kvUsage = undefined;
      this.deferred = undefined;
    }
    if (this.stopped) return;
    if (health.ready) this.wakeStarters();
    this.healthChanges.emit(health);
  }

  /** One probe at a time: a failure during a running probe waits for that probe's verdict. */
  private probeSoon(): void {
    if (this.polling && !this.probing && !this.stopped) void this.poller.probeNow();
  }

  private wakeStarters(): void {
    for (const resolve of this.readyWaiters.splice(0)) resolve();
  }
}

/** The llama.cpp adapter for a server at `opts.baseUrl`; `tuning` only for tests and unusual deployments. */
export function createLlamaCppAdapter(opts: HttpEngineOptions, tuning?: LlamaCppTuning): LlamaCppAdapter {
  return new LlamaCppAdapter(opts, tuning);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
