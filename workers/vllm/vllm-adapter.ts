// The vLLM adapter: generation through vLLM's OpenAI-compatible server
// (workers/openai/), embeddings (POST /v1/embeddings) and rerank (POST
// /v1/rerank) for the pooling models vLLM serves with --task embed or score,
// plus what only vLLM exposes: /health, /version, the served model's
// max_model_len in /v1/models, and load from /metrics. vLLM runs one task
// per model and tells no client which, so `opts.workloads` says it.
import { Engine, Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import type { SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import { httpEngineInfo, type EngineAdapter, type EngineInfo, type GenerationResult, type GenerationSink } from "../engine-adapter.js";
import type { ProbeResult } from "../engine/health-poller.js";
import { PolledHttpAdapter } from "../engine/polled-http-adapter.js";
import { runPooling, type PoolingPaths } from "../engine/pooling-call.js";
import { probeGet } from "../engine/probe-get.js";
import { GENERATION_ONLY, servedWorkload } from "../engine/served-workloads.js";
import type { HttpTuning } from "../http/engine-clients.js";
import { positiveSlots, type HttpEngineOptions } from "../http/engine-options.js";
import { maxOf, parsePromText, sumOf } from "../http/prometheus-text.js";
import { missingModel, openAiProtocolSetup } from "../openai/openai-adapter.js";
import { refuseUnhonoured, samplingFeatures, stopsRequested, type Honoured } from "../engine/sampling-support.js";
import { MODELS_PATH, openAiRequest, parseModelList, type OpenAiApi } from "../openai/openai-protocol.js";
import { honouredFields } from "../openai/openai-sampling.js";
import { streamOpenAi } from "../openai/openai-stream.js";

export interface VllmAdapterOptions extends HttpEngineOptions {
  /** Default "completions"; tasks that send `inputs` use chat either way. */
  api?: OpenAiApi;
  http?: HttpTuning;
}

/** vLLM batches continuously, so it runs many streams at once; its real limit (max_num_seqs) is not exposed. */
export const VLLM_DEFAULT_SLOTS = 16;

/** The Embeddings API, and the Jina-compatible one of the Re-rank API's three paths (vLLM docs, "OpenAI-Compatible Server"). */
const POOLING_PATHS: PoolingPaths = { embeddings: "/v1/embeddings", rerank: "/v1/rerank" };

/** Gauges read from vLLM's /metrics. */
export const VLLM_METRICS = {
  running: "vllm:num_requests_running",
  waiting: "vllm:num_requests_waiting",
  kvCache: "vllm:kv_cache_usage_perc",
  /** The KV gauge's name before vLLM's V1 engine (still served by 0.6-0.9). */
  kvCacheLegacy: "vllm:gpu_cache_usage_perc",
} as const;

/** Every field (openai/openai-sampling.ts: top_k, min_p, repetition_penalty beside OpenAI's); chats through /v1/chat/completions and the model's template. */
const VLLM_HONOURED: Honoured = { engine: "vLLM server", sampling: honouredFields("vllm", "completions"), chat: "chat-endpoint" };

export interface VllmLoad {
  running?: number;
  waiting?: number;
  /** 0..1 (vLLM's "_perc" gauges are fractions). */
  kvCacheUsage?: number;
}

export function createVllmAdapter(opts: VllmAdapterOptions): VllmAdapter {
  return new VllmAdapter(opts);
}

export class VllmAdapter extends PolledHttpAdapter implements EngineAdapter {
  private readonly api: OpenAiApi;
  /** The name vLLM serves the model under (--served-model-name), learned from /v1/models. */
  private servedModel: string | undefined;
  /** Version and model are read again after any failed probe: a restarted engine may be another build. */
  private identified = false;
  private load: VllmLoad = {};
  private readonly slots: number;

  constructor(private readonly opts: VllmAdapterOptions) {
    super(openAiProtocolSetup(opts, opts.http));
    this.api = opts.api ?? "completions";
    this.slots = positiveSlots(opts.slots, VLLM_DEFAULT_SLOTS);
    this.currentInfo = this.infoWith("", 0);
  }

  slotsTotal(): number {
    return this.slots;
  }

  kvCacheUsageRatio(): number | undefined {
    const kv = this.load.kvCacheUsage;
    return kv === undefined ? undefined : Math.min(1, Math.max(0, kv));
  }

  /**
   * Requests vLLM has queued behind its running batch, from the last scrape.
   * Not part of EngineAdapter yet: for the sidecar's props.requests_waiting.
   */
  requestsWaiting(): number | undefined {
    return this.load.waiting;
  }

  /** The last scrape of /metrics; empty when it failed or has not run. */
  engineLoad(): VllmLoad {
    return { ...this.load };
  }

  async generate(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    const workload = servedWorkload(request, this.currentInfo.workloads, "vLLM server");
    const model = this.servedModel ?? this.opts.engineModel ?? this.opts.modelRef;
    if (workload !== Workload.WORKLOAD_COMPLETION)
      return runPooling(workload, { http: this.http, paths: POOLING_PATHS, model, request, signal, sink });
    refuseUnhonoured(request, VLLM_HONOURED);
    const wire = openAiRequest(request, model, this.api, "vllm");
    return streamOpenAi({ http: this.http, wire, signal, sink, stopsSent: stopsRequested(request) });
  }

  /** A failed probe may be a restart: identity is read again, and a dead engine's load is no figure. */
  protected override probeFailed(): void {
    this.identified = false;
    this.load = {};
  }

  /** /health (200 = engine alive), then identity once per engine life, then load. */
  protected async probe(signal: AbortSignal): Promise<ProbeResult> {
    const health = await probeGet(this.probes, "/health", signal);
    if (!("text" in health)) return health;
    if (!this.identified) {
      const identity = await this.identify(signal);
      if (identity) return identity;
    }
    this.load = await this.scrape(signal);
    return { outcome: "ready" };
  }

  /** Reads version and served model into info(); returns the ProbeResult that stops the probe, if any. */
  private async identify(signal: AbortSignal): Promise<ProbeResult | undefined> {
    const models = await probeGet(this.probes, MODELS_PATH, signal);
    if (!("text" in models)) return models;
    let cards;
    try {
      cards = parseModelList(models.text);
    } catch (err) {
      return { outcome: "down", detail: `GET ${MODELS_PATH}: ${(err as Error).message}` };
    }
    const wanted = this.opts.engineModel;
    const card = wanted === undefined ? cards[0] : cards.find((c) => c.id === wanted);
    if (!card)
      return {
        outcome: "down",
        detail: missingModel(
          wanted ?? "(any)",
          cards.map((c) => c.id),
        ),
      };
    // An old vLLM without /version still serves; the version then stays unknown.
    const version = await probeGet(this.probes, "/version", signal);
    this.servedModel = card.id;
    this.currentInfo = this.infoWith("text" in version ? versionOf(version.text) : "", card.maxModelLen ?? 0);
    this.identified = true;
    return undefined;
  }

  /** Best effort: metrics may be disabled (--disable-log-stats) or slow; health does not depend on them. */
  private async scrape(signal: AbortSignal): Promise<VllmLoad> {
    const got = await probeGet(this.probes, "/metrics", signal);
    return "text" in got ? vllmLoadOf(got.text) : {};
  }

  private infoWith(engineVersion: string, ctxMax: number): EngineInfo {
    // vLLM reports no digest of its weights; a hash of its model name would only pretend to be one.
    return httpEngineInfo({
      engine: Engine.ENGINE_VLLM,
      adapter: "vllm",
      engineVersion,
      modelRef: this.opts.modelRef,
      ctxMax,
      workloads: this.opts.workloads ?? GENERATION_ONLY,
      features: { seed: "true", cancel: "abort", api: this.api, ...samplingFeatures(VLLM_HONOURED) },
    });
  }
}

/** Load figures from vLLM's Prometheus text; gauges split by label (model, engine) are summed, KV usage is the fullest. */
export function vllmLoadOf(text: string): VllmLoad {
  const samples = parsePromText(text);
  const load: VllmLoad = {};
  const running = sumOf(samples, VLLM_METRICS.running);
  const waiting = sumOf(samples, VLLM_METRICS.waiting);
  const kv = maxOf(samples, VLLM_METRICS.kvCache) ?? maxOf(samples, VLLM_METRICS.kvCacheLegacy);
  if (running !== undefined) load.running = running;
  if (waiting !== undefined) load.waiting = waiting;
  if (kv !== undefined) load.kvCacheUsage = kv;
  return load;
}

/** `{"version": "0.6.3"}` → "0.6.3"; "" for anything else. */
function versionOf(text: string): string {
  try {
    const json = JSON.parse(text) as { version?: unknown };
    return typeof json.version === "string" ? json.version : "";
  } catch {
    return "";
  }
}
