import { Engine, Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import type { ProbeResult } from "../engine/health-poller.js";
import { PolledHttpAdapter } from "../engine/polled-http-adapter.js";
import { runPooling, type PoolingPaths } from "../engine/pooling-call.js";
import { GENERATION_ONLY, servedWorkload } from "../engine/served-workloads.js";
import {
  EvictionUnsupportedError,
  httpEngineInfo,
  WorkerFailure,
  type EngineAdapter,
  type EngineInfo,
  type GenerationResult,
  type GenerationSink,
} from "../engine-adapter.js";
import { engineClients, probeBounds, type HttpTuning } from "../http/engine-clients.js";
import type { RetryPolicy } from "../http/engine-http.js";
import { engineErrorMessage, failureOf, statusOfFailure } from "../http/engine-errors.js";
import { erasedTokensOf, idleSlotsOf, propsOf, servedSlotOf, type LlamaCppProps } from "./llamacpp-api.js";
import { streamCompletion } from "./llamacpp-completion.js";
import { LLAMACPP_HONOURED } from "./llamacpp-sampling.js";
import { SessionSlots } from "./session-slots.js";
import { refuseUnhonoured, samplingFeatures } from "../engine/sampling-support.js";
import { parsePromText as parsePrometheusText, sampleValue } from "../http/prometheus-text.js";
import type { HttpEngineOptions } from "../http/engine-options.js";

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
  /** A slot erase (session eviction) slower than this fails; default 1_500, inside core's 2 s deadline for EvictSession. */
  evictTimeoutMs?: number;
}

const HEALTH_PATH = "/health";
const PROPS_PATH = "/props";
const SLOTS_PATH = "/slots";
const METRICS_PATH = "/metrics";
/**
 * The OpenAI-compatible embeddings route (a list of inputs in, one pooled
 * vector each out, with usage) rather than /embedding, whose answer the
 * README leaves undocumented and which changed shape across builds; and
 * /rerank, an alias the README lists for /reranking.
 */
const POOLING_PATHS: PoolingPaths = { embeddings: "/v1/embeddings", rerank: "/rerank" };
/** What llama.cpp answers for /slots without --slots and /metrics without --metrics (404 on old builds). */
const NOT_ENABLED = new Set([404, 501]);
/** Failures that suggest the engine went away: check its health now rather than at the next poll. */
const PROBE_AFTER = new Set([WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, WorkerErrorKind.WORKER_ERROR_KIND_RESET]);

/**
 * Drives a llama.cpp server (`llama-server`) that runs elsewhere: generations
 * through POST /completion streamed as SSE, embeddings through POST
 * /v1/embeddings (a server started with --embeddings) and relevance scores
 * through POST /rerank (--reranking), as `opts.workloads` says the server
 * was started (it cannot be asked), health from GET /health, facts
 * from GET /props, free slots from GET /slots and the KV-cache fill from
 * GET /metrics (when started with --metrics). Cancel closes the HTTP request,
 * which frees the engine's slot. A session's completions are pinned to the
 * slot holding its KV cache when that slot is free (`id_slot`, see
 * session-slots.ts), and evicting the session erases the slots that hold it
 * (POST /slots/{id}?action=erase, which needs --slot-save-path: without it
 * the server answers 501 and eviction is unsupported). Every sampling
 * parameter goes to /completion (llamacpp-sampling.ts); a chat is rendered
 * with the model's template by POST /apply-template first (llamacpp-chat.ts).
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
export class LlamaCppAdapter extends PolledHttpAdapter implements EngineAdapter {
  private readonly probeTimeoutMs: number;
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
  private readonly sessions = new SessionSlots();
  /** The engine's 501 to a slot action, until it is seen down (it may restart with --slot-save-path). */
  private slotActionsRefused: string | undefined;
  private readonly evictTimeoutMs: number;

  constructor(
    private readonly opts: HttpEngineOptions,
    tuning: LlamaCppTuning = {},
  ) {
    const probeTimeoutMs = tuning.probeTimeoutMs ?? 5_000;
    const http: HttpTuning = {
      connectTimeoutMs: tuning.connectTimeoutMs,
      headersTimeoutMs: tuning.headersTimeoutMs ?? 300_000,
      idleTimeoutMs: tuning.idleTimeoutMs,
      retry: tuning.retry,
    };
    super({
      // Polls go through their own client without retries: the poller's thresholds are the smoothing.
      clients: engineClients(opts, http, probeBounds(http, probeTimeoutMs)),
      poll: { intervalMs: opts.pollIntervalMs, failureThreshold: tuning.failureThreshold, probeTimeoutMs },
      restartRefusal: () => new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, "the llama.cpp adapter was stopped"),
    });
    this.probeTimeoutMs = probeTimeoutMs;
    this.evictTimeoutMs = tuning.evictTimeoutMs ?? 1_500;
    this.currentInfo = this.infoFor(undefined);
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

  async generate(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    const workload = servedWorkload(request, this.currentInfo.workloads, "llama.cpp server");
    this.running++;
    try {
      if (workload !== Workload.WORKLOAD_COMPLETION) {
        return await runPooling(workload, { http: this.http, paths: POOLING_PATHS, model: this.opts.engineModel, request, signal, sink });
      }
      refuseUnhonoured(request, LLAMACPP_HONOURED);
      return await this.completion(request, signal, sink);
    } catch (err) {
      if (err instanceof WorkerFailure && PROBE_AFTER.has(err.kind)) this.probeNow();
      throw err;
    } finally {
      this.running--;
    }
  }

  /** One completion on the session's slot when it is free; what its final frame says of the slot is remembered. */
  private async completion(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    // Only a slot id the engine has: llama.cpp defers a task pinned to a slot it does not have for ever.
    const claim = this.sessions.claim(request.sessionId, this.props?.totalSlots ?? 0);
    let served: ReturnType<typeof servedSlotOf>;
    try {
      return await streamCompletion(this.http, request, signal, sink, {
        idSlot: claim.idSlot,
        ended: (final) => (served = servedSlotOf(final)),
      });
    } finally {
      claim.finish(served);
    }
  }

  /**
   * Erases every slot that holds the session's KV cache; true when there was
   * one. Rejects EvictionUnsupportedError once the server refused slot
   * actions (501: started without --slot-save-path), WorkerFailure when an
   * erase failed or took longer than evictTimeoutMs (llama.cpp erases a
   * busy slot only when its completion is done).
   */
  async evictSession(sessionId: string): Promise<boolean> {
    if (this.slotActionsRefused !== undefined) throw new EvictionUnsupportedError(this.slotActionsRefused);
    const slots = sessionId === "" ? [] : this.sessions.slotsOf(sessionId);
    for (const slot of slots) await this.eraseSlot(slot, sessionId);
    return slots.length > 0;
  }

  private async eraseSlot(slot: number, sessionId: string): Promise<void> {
    const path = `/slots/${slot}?action=erase`;
    const timeout = AbortSignal.timeout(this.evictTimeoutMs);
    let answer: { body: unknown };
    try {
      answer = await this.http.postJson(path, {}, { signal: timeout });
    } catch (err) {
      if (err instanceof WorkerFailure && statusOfFailure(err) === 501) {
        this.slotActionsRefused = `llama.cpp refuses slot actions, so sessions cannot be evicted: ${err.message}`;
        throw new EvictionUnsupportedError(this.slotActionsRefused, { cause: err });
      }
      if (!timeout.aborted) throw err;
      throw failureOf({
        method: "POST",
        path,
        kind: WorkerErrorKind.WORKER_ERROR_KIND_TIMEOUT,
        cause: new Error(`no answer within ${this.evictTimeoutMs} ms`),
      });
    }
    if (erasedTokensOf(answer.body) === undefined)
      throw failureOf({
        method: "POST",
        path,
        kind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR,
        cause: new Error("the answer has no n_erased"),
      });
    this.sessions.erased(slot, sessionId);
  }

  /**
   * Tokens the engine holds in its KV cache for the session: the
   * `tokens_cached` of the last completion on each slot that holds it;
   * undefined when none is known. llama.cpp reports no per-slot KV bytes
   * (its /metrics KV gauges are server-wide, and dropped by current builds).
   */
  kvTokensOf(sessionId: string): number | undefined {
    return this.sessions.tokensOf(sessionId);
  }

  /**
   * kvTokensOf in bytes, given what one token's K and V take for the served
   * model (workers/hardware/model-fit.ts kvBytesPerToken of its GGUF at the
   * server's cache type, f16 by default): the engine cannot tell this one.
   */
  kvBytesOf(sessionId: string, bytesPerToken: number): number | undefined {
    const tokens = this.kvTokensOf(sessionId);
    return tokens === undefined ? undefined : tokens * bytesPerToken;
  }

  private infoFor(props: LlamaCppProps | undefined): EngineInfo {
    // llama.cpp reports a model path, never a digest of the weights.
    return httpEngineInfo({
      engine: Engine.ENGINE_LLAMACPP,
      adapter: "llamacpp",
      engineVersion: props?.buildInfo ?? "",
      modelRef: this.opts.modelRef,
      ctxMax: props?.ctxPerSlot ?? 0,
      workloads: this.opts.workloads ?? GENERATION_ONLY,
      features: {
        seed: "true",
        cancel: "abort",
        cache_prompt: "true",
        determinism: props?.totalSlots === 1 ? "single-slot" : "best_effort",
        ...samplingFeatures(LLAMACPP_HONOURED),
      },
    });
  }

  /**
   * One poll: GET /health, and while it says ready also /props, /slots and
   * /metrics, so one timer keeps every figure fresh.
   */
  protected async probe(signal: AbortSignal): Promise<ProbeResult> {
    const { status, text } = await this.probes.get(HEALTH_PATH, { signal, timeoutMs: this.probeTimeoutMs }).catch((err: unknown) => {
      // An aborted poll rejects with the signal's bare AbortError; say what it means.
      throw signal.aborted ? new Error(`GET ${HEALTH_PATH}: no answer within ${this.probeTimeoutMs} ms`) : err;
    });
    if (status === 429 || status === 408) return { outcome: "busy" };
    // llama.cpp answers 503 {"error":{"message":"Loading model"}} until the model is loaded.
    if (status === 503) return { outcome: "loading", detail: this.probes.redact(engineErrorMessage(text)) };
    if (status < 200 || status > 299)
      return { outcome: "down", detail: failureOf({ path: HEALTH_PATH, status, body: this.probes.redact(text) }).message };
    const denied = await this.refresh(signal);
    return denied ? { outcome: "down", detail: denied } : { outcome: "ready" };
  }

  /**
   * Reads /props, /slots and /metrics; returns why the engine is not ready
   * yet, if so. A figure that cannot be read keeps its last value. A refused
   * API key on /props is returned: /health is public, so this is the only
   * sign that every generation would fail.
   */
  private async refresh(signal: AbortSignal): Promise<string | undefined> {
    const get = (path: string) => this.probes.get(path, { signal, timeoutMs: this.probeTimeoutMs }).catch(() => undefined);
    const [props, slots, metrics] = await Promise.all([
      get(PROPS_PATH),
      this.slotsDisabled ? undefined : get(SLOTS_PATH),
      this.metricsDisabled ? undefined : get(METRICS_PATH),
    ]);
    if (props?.status === 401 || props?.status === 403) {
      return failureOf({ path: PROPS_PATH, status: props.status, body: this.probes.redact(props.text) }).message;
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
    // Another slot count is another server (restarted with another --parallel): its slots hold nothing of ours.
    if (old && old.totalSlots !== props.totalSlots) this.sessions.clear();
    if (old && old.buildInfo === props.buildInfo && old.ctxPerSlot === props.ctxPerSlot && old.totalSlots === props.totalSlots) return;
    this.currentInfo = this.infoFor(props);
  }

  /** A restarted engine may come back with other flags; what it said about them no longer holds. */
  protected override engineUnready(): void {
    this.sessions.clear();
    this.slotActionsRefused = undefined;
    this.slotsDisabled = false;
    this.metricsDisabled = false;
    this.idleSlots = undefined;
    this.kvUsage = undefined;
    this.deferred = undefined;
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
