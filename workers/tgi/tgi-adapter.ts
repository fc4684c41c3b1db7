// Hugging Face Text Generation Inference behind the EngineAdapter seam:
// `POST /generate_stream` (SSE) for generations, `GET /health` for health and
// `GET /info` for what the sidecar announces. TGI serves one model, chosen
// at launch, so there is no loadModel and no model name in requests
// (HttpEngineOptions.engineModel is accepted for uniformity and unused).
import { StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import type { EngineAdapter, GenerationResult, GenerationSink } from "../engine-adapter.js";
import type { ProbeResult } from "../engine/health-poller.js";
import { PolledHttpAdapter } from "../engine/polled-http-adapter.js";
import { engineClients } from "../http/engine-clients.js";
import { failureOf } from "../http/engine-errors.js";
import {
  TGI_DEFAULT_MAX_CONCURRENT_REQUESTS,
  engineInfoOf,
  generateRequestBody,
  parseStreamEvent,
  slotsOf,
  type TgiInfo,
} from "./tgi-protocol.js";
import type { HttpEngineOptions } from "../http/engine-options.js";

/** Timings a deployment rarely touches and tests shorten. */
export interface TgiTuning {
  /**
   * Longest silence inside a stream, default 60_000. TGI sends an SSE
   * keep-alive comment every 15 s even while a request waits in its queue,
   * so only a stuck engine stays silent this long.
   */
  idleTimeoutMs?: number;
  /** Default 5_000. */
  connectTimeoutMs?: number;
  /** One health probe (GET /health, then /info after a restart), default 5_000. */
  probeTimeoutMs?: number;
  /** Failed probes before a ready engine is reported down, default 3. */
  failureThreshold?: number;
}

const GENERATE_PATH = "/generate_stream";

export function createTgiAdapter(opts: HttpEngineOptions, tuning: TgiTuning = {}): EngineAdapter {
  return new TgiAdapter(opts, tuning);
}

/**
 * Health and /info through the polled base; stop() only pauses the polls, so
 * a stopped adapter may start() again.
 */
export class TgiAdapter extends PolledHttpAdapter implements EngineAdapter {
  private tgiInfo: TgiInfo | undefined;
  /** /info is read again on the first good probe after a bad one: a restarted TGI may run another release or revision. */
  private infoStale = true;

  constructor(
    private readonly opts: HttpEngineOptions,
    tuning: TgiTuning = {},
  ) {
    const { connectTimeoutMs, idleTimeoutMs, probeTimeoutMs, failureThreshold } = tuning;
    super({
      // Probes get one attempt each: the poller's thresholds, not retries, absorb a flaky probe.
      clients: engineClients(opts, { connectTimeoutMs, idleTimeoutMs }, { connectTimeoutMs }),
      poll: { intervalMs: opts.pollIntervalMs, probeTimeoutMs, failureThreshold },
    });
    this.currentInfo = engineInfoOf(opts.modelRef, undefined);
  }

  /**
   * `--slots`, else TGI's max_concurrent_requests once /info was read, else
   * TGI's default for it (the sidecar sizes its pool before start()).
   */
  slotsTotal(): number {
    return this.opts.slots ?? slotsOf(this.tgiInfo) ?? TGI_DEFAULT_MAX_CONCURRENT_REQUESTS;
  }

  async generate(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    let result: GenerationResult | undefined;
    let started = false;
    try {
      const stream = await this.http.stream(GENERATE_PATH, generateRequestBody(request), { signal, format: "sse", retryConnect: true });
      for await (const frames of stream.batches) {
        // Anything after the last frame is not TGI's; reading on lets the connection end cleanly and be reused.
        if (result) continue;
        const texts: string[] = [];
        let failure: Error | undefined;
        for (const frame of frames) {
          const event = parseStreamEvent(frame.data);
          if (event.type === "error") {
            failure = failureOf({ method: "POST", path: GENERATE_PATH, kind: event.kind, body: event.body, secrets: this.secrets });
            break;
          }
          if (event.text !== undefined) texts.push(event.text);
          if (event.end) {
            result = { stopReason: event.end.stopReason };
            if (event.end.tokensIn !== undefined) result.tokensIn = event.end.tokensIn;
            break;
          }
        }
        // TGI has accepted a prompt (validated it, found a free permit) only once it streams a token; refusals come as error frames.
        if (!started && (texts.length > 0 || result)) {
          started = true;
          sink.started(result?.tokensIn ?? 0);
        }
        if (texts.length > 0) sink.tokens(texts);
        if (failure) throw failure;
      }
    } catch (err) {
      if (result) return result;
      if (signal.aborted) return { stopReason: StopReason.STOP_REASON_CANCELED };
      throw err;
    }
    if (result) return result;
    if (signal.aborted) return { stopReason: StopReason.STOP_REASON_CANCELED };
    throw failureOf({
      method: "POST",
      path: GENERATE_PATH,
      kind: WorkerErrorKind.WORKER_ERROR_KIND_RESET,
      cause: new Error("the engine ended the stream before its last frame"),
      secrets: this.secrets,
    });
  }

  protected override probeFailed(): void {
    this.infoStale = true;
  }

  protected async probe(signal: AbortSignal): Promise<ProbeResult> {
    const res = await this.probes.get("/health", { signal });
    if (res.status === 429 || res.status === 408) return { outcome: "busy" };
    if (res.status < 200 || res.status > 299) {
      // 503 is TGI's answer when a check generation on its shards fails; while loading it does not listen at all.
      return { outcome: "down", detail: failureOf({ path: "/health", status: res.status, body: res.text, secrets: this.secrets }).message };
    }
    if (this.infoStale) {
      const { body } = await this.probes.getJson<TgiInfo>("/info", { signal });
      this.tgiInfo = body;
      this.currentInfo = engineInfoOf(this.opts.modelRef, body);
      this.infoStale = false;
    }
    return { outcome: "ready" };
  }
}
