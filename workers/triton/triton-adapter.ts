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
//
// Sampling: what the model's declared inputs take (triton-sampling.ts), read
// from its metadata before the first generation; stop strings are matched
// here. No chat: the generate extension takes text, and the model's chat
// template is not Triton's to apply.
import { Engine, StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import {
  httpEngineInfo,
  WorkerFailure,
  type EngineAdapter,
  type EngineInfo,
  type GenerationResult,
  type GenerationSink,
} from "../engine-adapter.js";
import type { HealthPollerOptions, ProbeResult } from "../engine/health-poller.js";
import { PolledHttpAdapter } from "../engine/polled-http-adapter.js";
import { engineClients, type HttpTuning } from "../http/engine-clients.js";
import { failureOf } from "../http/engine-errors.js";
import type { EngineHttp, EngineStream } from "../http/engine-http.js";
import type { SseFrame } from "../http/stream-decoder.js";
import { refuseUnhonoured, samplingFeatures, stopsRequested } from "../engine/sampling-support.js";
import { StopMatcher } from "../engine/stop-matcher.js";
import { modelPath, probeTriton } from "./triton-probe.js";
import { NO_SAMPLING, tritonHonoured, tritonSamplingOf, type TritonSampling } from "./triton-sampling.js";
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

export interface TritonAdapterOptions extends HttpEngineOptions {
  /** The model's context window; Triton's metadata does not say. Default 0 (unknown). */
  ctxMax?: number;
  /** Transport tuning (timeouts, retries); the defaults suit a real server, tests shorten them. */
  http?: HttpTuning;
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

export function createTritonAdapter(opts: TritonAdapterOptions): TritonAdapter {
  return new TritonAdapter(opts);
}

/**
 * Health and metadata through the polled base, probes without retries (the
 * poller's thresholds already absorb one failed probe); stop() only pauses
 * the polls, so a stopped adapter may start() again.
 */
export class TritonAdapter extends PolledHttpAdapter implements EngineAdapter {
  private readonly model: string;
  private readonly slots: number;
  private readonly ctxMax: number;
  private layout: ModelLayout | undefined;
  /** The sampling fields the model takes, from the same metadata as the layout. */
  private sampling: TritonSampling = NO_SAMPLING;
  /** Re-read metadata at the next ready probe: the server may have restarted with another version. */
  private metadataStale = true;

  constructor(private readonly opts: TritonAdapterOptions) {
    const tuning: HttpTuning = { headersTimeoutMs: HEADERS_TIMEOUT_MS, ...opts.http };
    super({ clients: engineClients(opts, tuning, tuning), poll: { intervalMs: opts.pollIntervalMs, ...opts.health } });
    this.model = opts.engineModel || DEFAULT_TRITON_MODEL;
    this.slots = opts.slots ?? DEFAULT_TRITON_SLOTS;
    this.ctxMax = opts.ctxMax ?? 0;
    this.currentInfo = this.infoFor(undefined, undefined, undefined);
  }

  slotsTotal(): number {
    return this.slots;
  }

  async generate(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    if (signal.aborted) return CANCELED;
    const layout = this.layout ?? (await this.readLayout(signal));
    // What the model takes depends on its declared inputs, known only now.
    refuseUnhonoured(request, tritonHonoured(this.sampling));
    const path = modelPath(this.model, "/generate_stream");
    const settings = { prompt: request.prompt, maxTokens: request.maxTokens, seed: request.seed, sampling: request.sampling };
    let stream: EngineStream<SseFrame>;
    try {
      stream = await this.http.stream(path, generateBody(settings, layout, this.sampling), { signal, format: "sse" });
    } catch (err) {
      if (signal.aborted) return CANCELED;
      throw reclassify(err);
    }
    // Triton's status line comes with the first response: the prompt was accepted. Its size comes later, if at all.
    sink.started(0);
    const tally = new StreamTally(request.maxTokens);
    const stops = stopsRequested(request) ? new StopMatcher(request.sampling!.stop) : undefined;
    let stopped: boolean;
    try {
      stopped = await this.readStream(path, stream, tally, stops, sink);
    } catch (err) {
      if (signal.aborted) return CANCELED;
      throw err;
    }
    if (signal.aborted && !stopped) return CANCELED;
    const result: GenerationResult = { stopReason: stopped ? StopReason.STOP_REASON_STOP : tally.stopReason() };
    if (tally.inputTokens !== undefined) result.tokensIn = tally.inputTokens;
    return result;
  }

  /**
   * The stream's texts to the sink, one call per socket chunk, up to a stop
   * string of the task's (true: leaving the loop closes the connection,
   * which stops the model); what the matcher holds at the end goes out then.
   */
  private async readStream(
    path: string,
    stream: EngineStream<SseFrame>,
    tally: StreamTally,
    stops: StopMatcher | undefined,
    sink: GenerationSink,
  ): Promise<boolean> {
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
      const step = stops ? stops.pushAll(texts) : { texts, stopped: false };
      if (step.texts.length > 0) sink.tokens(step.texts);
      if (failure) throw failure;
      if (step.stopped) return true;
    }
    const held = stops?.flush() ?? [];
    if (held.length > 0) sink.tokens(held);
    return false;
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

  protected async probe(signal: AbortSignal): Promise<ProbeResult> {
    const result = await probeTriton(this.probes, this.model, signal);
    if ((result.outcome === "ready" || result.outcome === "busy") && this.metadataStale) {
      // Before reporting ready, so whoever hears it reads the version now served; a failure retries at the next probe.
      await this.refreshMetadata(this.probes, signal).catch(() => undefined);
    }
    return result;
  }

  protected override probeFailed(): void {
    this.metadataStale = true;
  }

  private async refreshMetadata(http: EngineHttp, signal: AbortSignal): Promise<void> {
    const [server, model] = await Promise.all([
      http.getJson<ServerMetadata>("/v2", { signal }),
      http.getJson<ModelMetadata>(modelPath(this.model), { signal }),
    ]);
    this.layout = layoutOf(model.body);
    this.sampling = tritonSamplingOf(model.body);
    this.currentInfo = this.infoFor(server.body, model.body, this.layout, this.sampling);
    this.metadataStale = false;
  }

  private infoFor(
    server: ServerMetadata | undefined,
    model: ModelMetadata | undefined,
    layout: ModelLayout | undefined,
    sampling: TritonSampling = NO_SAMPLING,
  ): EngineInfo {
    // Triton reports a model name and version numbers, nothing that identifies the weights.
    return httpEngineInfo({
      engine: Engine.ENGINE_TRITON,
      adapter: "triton",
      engineVersion: typeof server?.version === "string" ? server.version : "",
      modelRef: this.opts.modelRef,
      ctxMax: this.ctxMax,
      features: {
        seed: layout?.seedHonoured ? "true" : "false",
        seed_field: (layout ?? UNKNOWN_LAYOUT).seedRoute,
        cancel: "abort",
        triton_model: this.model,
        triton_model_version: typeof model?.versions?.[0] === "string" ? model.versions[0] : "",
        triton_platform: typeof model?.platform === "string" ? model.platform : "",
        ...samplingFeatures(tritonHonoured(sampling)),
      },
    });
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
