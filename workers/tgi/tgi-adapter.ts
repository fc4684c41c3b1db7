// Hugging Face Text Generation Inference behind the EngineAdapter seam:
// `POST /generate_stream` (SSE) for generations, `POST /v1/chat/completions`
// for chats, `GET /health` for health and `GET /info` for what the sidecar
// announces. TGI serves one model, chosen
// at launch, so there is no loadModel and no model name in requests
// (HttpEngineOptions.engineModel is accepted for uniformity and unused).
import type { SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import type { EngineAdapter, GenerationResult, GenerationSink } from "../engine-adapter.js";
import { refuseUnhonoured, stopsRequested } from "../engine/sampling-support.js";
import { StopMatcher } from "../engine/stop-matcher.js";
import { streamOpenAi } from "../openai/openai-stream.js";
import type { ProbeResult } from "../engine/health-poller.js";
import { PolledHttpAdapter } from "../engine/polled-http-adapter.js";
import { engineClients } from "../http/engine-clients.js";
import { failureOf } from "../http/engine-errors.js";
import { streamGenerate } from "./tgi-generate.js";
import { TGI_DEFAULT_MAX_CONCURRENT_REQUESTS, engineInfoOf, slotsOf, type TgiInfo } from "./tgi-protocol.js";
import { chatRequestBody, TGI_CHAT_HONOURED, TGI_CHAT_PATH, TGI_HONOURED } from "./tgi-sampling.js";
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

  /**
   * A prompt through /generate_stream (tgi-generate.ts), a chat through the
   * Messages API, which renders the model's chat template (TGI's own
   * /generate_stream cannot be told the rendered chat already carries its
   * special tokens). What TGI cannot honour is refused first.
   */
  async generate(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    refuseUnhonoured(request, TGI_HONOURED);
    const stops = stopsRequested(request) ? new StopMatcher(request.sampling!.stop) : undefined;
    if (request.messages.length === 0) return streamGenerate({ http: this.http, secrets: this.secrets, request, signal, sink, stops });
    refuseUnhonoured(request, TGI_CHAT_HONOURED);
    const wire = { api: "chat" as const, path: TGI_CHAT_PATH, body: chatRequestBody(request) };
    // The Messages API says "stop_sequence" for a matched stop, "stop" only at the end of sequence.
    return streamOpenAi({ http: this.http, wire, signal, sink, stopsSent: false, stops });
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
