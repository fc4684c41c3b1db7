// The adapter for NVIDIA Triton Inference Server serving an LLM through the
// TensorRT-LLM or vLLM backend, over Triton's HTTP generate extension
// (`POST /v2/models/{model}/generate_stream`, SSE) and the KServe v2 health
// and metadata endpoints. See triton-protocol.ts for the request and response
// fields and the sources they come from.
//
// Error mapping, beyond the shared one (workers/http/engine-errors.ts):
// - Triton answers a generate for a model it does not serve with HTTP 400
//   "Request for unknown model: ...". That is this sidecar's configuration
//   (or the model was unloaded), not the request: ENGINE_UNAVAILABLE, and
//   retriable, because a sibling replica may serve the model. The health
//   probe (model ready) takes this replica out of placement meanwhile.
// - An error inside a stream that began with 200 (`data: {"error":...}`) is
//   ENGINE_ERROR, raised after the tokens already delivered.
// - A first-response error arrives with its status (400 invalid argument,
//   500 internal, 503 unavailable) and an SSE-framed body; the kind follows
//   the status and the message is unwrapped from the frame.
import { Engine, StopReason, Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest, type WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import { ChangeListeners } from "../change-listeners.js";
import { WorkerFailure, type EngineAdapter, type EngineInfo, type GenerationResult, type GenerationSink } from "../engine-adapter.js";
import { HealthPoller, type HealthPollerOptions, type ProbeResult } from "../engine/health-poller.js";
import { failureOf } from "../http/engine-errors.js";
import { EngineHttp, type EngineHttpOptions, type EngineStream } from "../http/engine-http.js";
import type { SseFrame } from "../http/stream-decoder.js";
import { modelPath, probeTriton } from "./triton-probe.js";
import {
  generateBody,
  isUnknownModelMessage,
  layoutOf,
  parseChunk,
  StreamTally,
  UNKNOWN_LAYOUT,
  unwrapSseErrorMessage,
  type ModelLayout,
  type ModelMetadata,
  type ServerMetadata,
} from "./triton-protocol.js";
import type { HttpEngineOptions } from "../http/engine-options.js";

export type { HttpEngineOptions };

export interface TritonAdapterOptions extends HttpEngineOptions {
  /** The model's context window; Triton's metadata does not say. Default 0 (unknown). */
  ctxMax?: number;
  /** Transport tuning (timeouts, retries); the defaults suit a real server, tests shorten them. */
  http?: Pick<EngineHttpOptions, "connectTimeoutMs" | "headersTimeoutMs" | "idleTimeoutMs" | "retry">;
  /** Health thresholds (HealthPoller defaults: 3 failures to go down, 1 success to come back, 5 s per probe). */
  health?: Pick<HealthPollerOptions, "failureThreshold" | "successThreshold" | "probeTimeoutMs">;
}

/** The model name of TensorRT-LLM's inflight-batcher model repository. */
export const DEFAULT_TRITON_MODEL = "ensemble";
/** Triton does not expose how many requests its backend batches; 8 is a conservative share of a GPU. */
export const DEFAULT_TRITON_SLOTS = 8;
/**
 * Triton sends the status line and headers with the model's first response,
 * so waiting for headers is waiting for the first token: queueing plus
 * prefill. The shared default (30 s) would fail long prompts on a busy
 * server; this is the same bound as the gap between later tokens.
 */
const HEADERS_TIMEOUT_MS = 60_000;

const CANCELED: GenerationResult = { stopReason: StopReason.STOP_REASON_CANCELED };
const STOPPED: WorkerHealth = { live: false, ready: false, lastError: "stopped" };

export function createTritonAdapter(opts: TritonAdapterOptions): TritonAdapter {
  return new TritonAdapter(opts);
}

export class TritonAdapter implements EngineAdapter {
  private readonly model: string;
  private readonly slots: number;
  private readonly ctxMax: number;
  private readonly secrets: string[];
  /** Generations and on-demand metadata: per-call retries as the shared client does them. */
  private readonly http: EngineHttp;
  /** Probes: no retries, the poller's thresholds already absorb one failed probe. */
  private readonly probeHttp: EngineHttp;
  private readonly poller: HealthPoller;
  private readonly healthChanges = new ChangeListeners<WorkerHealth>();
  /** Replaced, never mutated, when metadata is (re)read, so a caller's copy stays consistent. */
  private currentInfo: EngineInfo;
  private layout: ModelLayout | undefined;
  /** Re-read metadata at the next ready probe: the server may have restarted with another version. */
  private metadataStale = true;
  private stopped = false;
  private startWaiter: (() => void) | undefined;

  constructor(private readonly opts: TritonAdapterOptions) {
    this.model = opts.engineModel || DEFAULT_TRITON_MODEL;
    this.slots = opts.slots ?? DEFAULT_TRITON_SLOTS;
    this.ctxMax = opts.ctxMax ?? 0;
    this.secrets = opts.apiKey ? [opts.apiKey] : [];
    const common: EngineHttpOptions = {
      baseUrl: opts.baseUrl,
      headers: opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {},
      secrets: this.secrets,
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      ...opts.http,
    };
    this.http = new EngineHttp(common);
    this.probeHttp = new EngineHttp({ ...common, retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 } });
    this.poller = new HealthPoller({ probe: (signal) => this.probe(signal), intervalMs: opts.pollIntervalMs ?? 2_000, ...opts.health });
    this.poller.onChange((health) => {
      if (!this.stopped) this.healthChanges.emit(health);
    });
    this.currentInfo = this.infoFor(undefined, undefined, undefined);
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

  slotsTotal(): number {
    return this.slots;
  }

  /** Resolves once the model is ready (or stop() is called); health reports progress meanwhile. */
  async start(): Promise<void> {
    this.stopped = false;
    const ready = new Promise<void>((resolve) => {
      const unsubscribe = this.healthChanges.add((h) => {
        if (h.ready) done();
      });
      const done = (): void => {
        unsubscribe();
        this.startWaiter = undefined;
        resolve();
      };
      this.startWaiter = done;
    });
    await this.poller.start();
    if (this.poller.current().ready) this.startWaiter?.();
    await ready;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.poller.stop();
    this.startWaiter?.();
    this.healthChanges.emit(STOPPED);
    this.http.close();
    this.probeHttp.close();
  }

  async generate(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    if (signal.aborted) return CANCELED;
    const layout = this.layout ?? (await this.readLayout(signal));
    const path = modelPath(this.model, "/generate_stream");
    const body = generateBody({ prompt: request.prompt, maxTokens: request.maxTokens, seed: request.seed }, layout);
    let stream: EngineStream<SseFrame>;
    try {
      stream = await this.http.stream(path, body, { signal, format: "sse" });
    } catch (err) {
      if (signal.aborted) return CANCELED;
      throw reclassify(err);
    }
    // Triton's status line comes with the first response: the prompt was accepted. Its size comes later, if at all.
    sink.started(0);
    const tally = new StreamTally(request.maxTokens);
    try {
      for await (const frames of stream.batches) {
        const texts: string[] = [];
        let failure: WorkerFailure | undefined;
        for (const frame of frames) {
          const chunk = parseChunk(frame.data);
          if (chunk === undefined) {
            failure = this.streamFailure(path, { cause: new Error(`not a JSON object in the stream: ${frame.data.slice(0, 200)}`) });
            break;
          }
          if (chunk.error !== undefined) {
            failure = this.streamFailure(path, { body: frame.data });
            break;
          }
          const text = tally.add(chunk);
          if (text !== undefined) texts.push(text);
        }
        // Tokens before the error were generated and are delivered; leaving the loop closes the connection.
        if (texts.length > 0) sink.tokens(texts);
        if (failure) throw failure;
      }
    } catch (err) {
      if (signal.aborted) return CANCELED;
      throw err;
    }
    if (signal.aborted) return CANCELED;
    const result: GenerationResult = { stopReason: tally.stopReason() };
    if (tally.inputTokens !== undefined) result.tokensIn = tally.inputTokens;
    return result;
  }

  private streamFailure(path: string, d: { body?: string; cause?: unknown }): WorkerFailure {
    return failureOf({ method: "POST", path, kind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR, secrets: this.secrets, ...d });
  }

  /** Model metadata on demand, when a generation comes before any ready probe read it; on failure, the defaults. */
  private async readLayout(signal: AbortSignal): Promise<ModelLayout> {
    try {
      await this.refreshMetadata(this.http, signal);
    } catch {
      // The generation itself will tell whether the server is there; it goes out with the default field names.
    }
    return this.layout ?? UNKNOWN_LAYOUT;
  }

  private async probe(signal: AbortSignal): Promise<ProbeResult> {
    let result: ProbeResult;
    try {
      result = await probeTriton(this.probeHttp, this.model, signal);
    } catch (err) {
      this.metadataStale = true;
      throw err;
    }
    if (result.outcome !== "ready" && result.outcome !== "busy") this.metadataStale = true;
    else if (this.metadataStale) {
      // Before reporting ready, so whoever hears it reads the version now served; a failure retries at the next probe.
      await this.refreshMetadata(this.probeHttp, signal).catch(() => undefined);
    }
    return result;
  }

  private async refreshMetadata(http: EngineHttp, signal: AbortSignal): Promise<void> {
    const [server, model] = await Promise.all([
      http.getJson<ServerMetadata>("/v2", { signal }),
      http.getJson<ModelMetadata>(modelPath(this.model), { signal }),
    ]);
    this.layout = layoutOf(model.body);
    this.currentInfo = this.infoFor(server.body, model.body, this.layout);
    this.metadataStale = false;
  }

  private infoFor(server: ServerMetadata | undefined, model: ModelMetadata | undefined, layout: ModelLayout | undefined): EngineInfo {
    return {
      engine: Engine.ENGINE_TRITON,
      adapter: "triton",
      engineVersion: typeof server?.version === "string" ? server.version : "",
      modelRef: this.opts.modelRef,
      // Triton reports a model name and version numbers, nothing that identifies the weights.
      modelDigest: "",
      ctxMax: this.ctxMax,
      workloads: [Workload.WORKLOAD_COMPLETION],
      deviceMask: "",
      vramTotalBytes: 0,
      vramFreeBytes: 0,
      servesAnyModel: false,
      features: {
        seed: layout?.seedHonoured ? "true" : "false",
        seed_field: (layout ?? UNKNOWN_LAYOUT).seedRoute,
        cancel: "abort",
        triton_model: this.model,
        triton_model_version: typeof model?.versions?.[0] === "string" ? model.versions[0] : "",
        triton_platform: typeof model?.platform === "string" ? model.platform : "",
      },
    };
  }
}

/** A failure before the stream, with Triton's specifics applied (see the header comment). */
function reclassify(err: unknown): unknown {
  if (!(err instanceof WorkerFailure)) return err;
  const message = unwrapSseErrorMessage(err.message);
  if (err.kind === WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST && isUnknownModelMessage(message)) {
    return new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, message, true);
  }
  return message === err.message ? err : new WorkerFailure(err.kind, message, err.retriable);
}
