// The `openai` adapter: any OpenAI-compatible HTTP server (OpenAI itself, a
// gateway, llama.cpp's or SGLang's OpenAI endpoints, ...), known only through
// the OpenAI API, so capacity comes from options and health from /v1/models.
import { Engine } from "../../contracts/gen/llama_orch/v1/common.js";
import type { SubmitRequest, WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import { httpEngineInfo, type EngineAdapter, type EngineInfo, type GenerationResult, type GenerationSink } from "../engine-adapter.js";
import type { ProbeResult } from "../engine/health-poller.js";
import { PolledHttpAdapter, type PolledAdapterSetup } from "../engine/polled-http-adapter.js";
import { PROBE_TIMEOUT_MS, probeGet } from "../engine/probe-get.js";
import { engineClients, probeBounds, type HttpTuning } from "../http/engine-clients.js";
import { positiveSlots, type HttpEngineOptions } from "../http/engine-options.js";
import { refuseUnhonoured, samplingFeatures, stopsRequested, type Honoured } from "../engine/sampling-support.js";
import { MODELS_PATH, openAiRequest, parseModelList, type OpenAiApi } from "./openai-protocol.js";
import { honouredFields } from "./openai-sampling.js";
import { streamOpenAi } from "./openai-stream.js";

export type { OpenAiApi } from "./openai-protocol.js";

export interface OpenAiAdapterOptions extends HttpEngineOptions {
  /**
   * Default "chat": many OpenAI-compatible servers offer only chat. Tasks
   * that send `inputs` use chat either way.
   */
  api?: OpenAiApi;
  http?: HttpTuning;
}

/** Capacity when the options do not say: the server does not tell, and a few concurrent streams suit most. */
export const OPENAI_DEFAULT_SLOTS = 4;

const NOT_STARTED: WorkerHealth = { live: false, ready: false, lastError: "not started" };

/**
 * How the OpenAI-protocol adapters (openai, vllm) live: probes bounded below
 * the poller's timeout, "not started" until start(), and no start() again
 * after stop().
 */
export function openAiProtocolSetup(opts: HttpEngineOptions, tuning: HttpTuning = {}): PolledAdapterSetup {
  return {
    clients: engineClients(opts, tuning, probeBounds(tuning, PROBE_TIMEOUT_MS)),
    poll: { intervalMs: opts.pollIntervalMs },
    beforeStart: NOT_STARTED,
    restartRefusal: () => new Error("stopped adapters do not restart"),
  };
}

export function createOpenAiAdapter(opts: OpenAiAdapterOptions): OpenAiAdapter {
  return new OpenAiAdapter(opts);
}

export class OpenAiAdapter extends PolledHttpAdapter implements EngineAdapter {
  private readonly model: string;
  private readonly api: OpenAiApi;
  private readonly slots: number;
  /** OpenAI's own parameters (openai-sampling.ts); chats through the chat endpoint, which applies the model's template. */
  private readonly honoured: Honoured;

  constructor(private readonly opts: OpenAiAdapterOptions) {
    // Accept the base URL as OpenAI clients spell it ("https://host/v1"): our paths carry /v1 themselves.
    super(openAiProtocolSetup({ ...opts, baseUrl: opts.baseUrl.replace(/\/v1\/?$/, "") }, opts.http));
    this.model = opts.engineModel ?? opts.modelRef;
    this.api = opts.api ?? "chat";
    this.slots = positiveSlots(opts.slots, OPENAI_DEFAULT_SLOTS);
    this.honoured = { engine: "OpenAI-compatible server", sampling: honouredFields("openai", this.api), chat: "chat-endpoint" };
    this.currentInfo = this.infoWith(0);
  }

  slotsTotal(): number {
    return this.slots;
  }

  async generate(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    refuseUnhonoured(request, this.honoured);
    const wire = openAiRequest(request, this.model, this.api, "openai");
    return streamOpenAi({ http: this.http, wire, signal, sink, stopsSent: stopsRequested(request) });
  }

  /** Ready when the server lists the model we send in requests; its card's context length, when given, becomes ctx_max. */
  protected async probe(signal: AbortSignal): Promise<ProbeResult> {
    const got = await probeGet(this.probes, MODELS_PATH, signal);
    if (!("text" in got)) return got;
    let ids: string[];
    try {
      const cards = parseModelList(got.text);
      const card = cards.find((c) => c.id === this.model);
      if (card) {
        if ((card.maxModelLen ?? 0) !== this.currentInfo.ctxMax) this.currentInfo = this.infoWith(card.maxModelLen ?? 0);
        return { outcome: "ready" };
      }
      ids = cards.map((c) => c.id);
    } catch (err) {
      return { outcome: "down", detail: `GET ${MODELS_PATH}: ${(err as Error).message}` };
    }
    return { outcome: "down", detail: missingModel(this.model, ids) };
  }

  private infoWith(ctxMax: number): EngineInfo {
    return httpEngineInfo({
      engine: Engine.ENGINE_OPENAI,
      adapter: "openai",
      // The OpenAI API reports neither a server version nor a weights digest.
      engineVersion: "",
      modelRef: this.opts.modelRef,
      ctxMax,
      features: { seed: "true", cancel: "abort", api: this.api, ...samplingFeatures(this.honoured) },
    });
  }
}

/** A not-Ready reason that tells the operator what to change. */
export function missingModel(model: string, served: string[]): string {
  const list = served.length === 0 ? "none" : served.length > 20 ? `${served.slice(0, 20).join(", ")}, ...` : served.join(", ");
  return `the engine does not serve model "${model}" (it lists: ${list}); set the engine model to one of these`;
}
