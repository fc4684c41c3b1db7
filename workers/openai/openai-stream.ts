// One streamed generation against an OpenAI-compatible server: request,
// SSE batches to the sink, finish reason, usage, in-stream errors, cancel.
import { StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind } from "../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure, type GenerationResult, type GenerationSink } from "../engine-adapter.js";
import type { StopMatcher } from "../engine/stop-matcher.js";
import type { EngineHttp } from "../http/engine-http.js";
import type { SseFrame } from "../http/stream-decoder.js";
import { parseStreamData, stopReasonOf, type OpenAiRequest, type StreamEvent } from "./openai-protocol.js";

export interface OpenAiGeneration {
  http: EngineHttp;
  /** The streaming request: openAiRequest's, or another server's in the same protocol (TGI's Messages API). */
  wire: OpenAiRequest;
  signal: AbortSignal;
  sink: GenerationSink;
  /** The task's stop strings went to a server that reports their match as finish_reason "stop" (see stopReasonOf). */
  stopsSent: boolean;
  /** For a server that streams the stop string itself (TGI): cuts it, and the generation, where it starts. */
  stops?: StopMatcher;
}

const CANCELED: GenerationResult = { stopReason: StopReason.STOP_REASON_CANCELED };

/**
 * Streams one generation. Every batch of frames decoded from one socket
 * chunk reaches the sink as one `tokens` call (one text per non-empty
 * chunk: servers stream one token per chunk). Resolves CANCELED when
 * `signal` aborts, which closes the connection so the server aborts the
 * request. Rejects WorkerFailure: the HTTP layer's kinds before and during
 * the stream, ENGINE_ERROR for an error object or garbage inside the stream
 * (after delivering the tokens that preceded it) and for a stream that ends
 * without finishing.
 */
export async function streamOpenAi(g: OpenAiGeneration): Promise<GenerationResult> {
  const { http, signal, sink } = g;
  if (signal.aborted) return CANCELED;
  const { path, body } = g.wire;
  let batches: AsyncIterable<SseFrame[]>;
  try {
    // retryConnect: a refused connection sent nothing, so a second try cannot run the prompt twice.
    ({ batches } = await http.stream(path, body, { signal, format: "sse", retryConnect: true }));
  } catch (err) {
    if (signal.aborted) return CANCELED;
    throw err;
  }
  sink.started(0);
  const reader = new FrameReader(http, path, g.stops);
  try {
    for await (const frames of batches) {
      // Read on to the end of the body after "[DONE]", so the keep-alive connection stays reusable.
      if (reader.done) continue;
      const texts = reader.read(frames);
      if (texts.length > 0) sink.tokens(texts);
      // Leaving the loop early closes the connection (EngineHttp destroys an unfinished response).
      if (reader.failure || reader.cut) break;
    }
  } catch (err) {
    // A connection lost after the generation finished (only usage or "[DONE]" missing) loses nothing the caller needs.
    if (!reader.done && reader.finishReason === undefined) throw err;
  }
  return reader.result(signal, sink, g.stopsSent);
}

/** What the frames of one stream said so far: its finish, usage, an in-stream failure, or a stop string cut out of it. */
class FrameReader {
  done = false;
  finishReason: string | undefined;
  failure: WorkerFailure | undefined;
  /** The stop matcher found a stop string: nothing after it is the task's. */
  cut = false;
  private matchedStop: boolean | undefined;
  private tokensIn: number | undefined;

  constructor(
    private readonly http: EngineHttp,
    private readonly path: string,
    private readonly stops: StopMatcher | undefined,
  ) {}

  /** The texts of one batch of frames, up to "[DONE]", a failure or a stop string. */
  read(frames: readonly SseFrame[]): string[] {
    const texts: string[] = [];
    for (const frame of frames) {
      const event = parseFrame(frame.data);
      if (event === undefined) {
        this.failure = this.failed(`invalid stream frame: ${JSON.stringify(frame.data.slice(0, 100))}`);
        break;
      }
      if (event.type === "done") {
        this.done = true;
        break;
      }
      if (event.type === "error") {
        this.failure = this.failed(`engine error in the stream: ${event.message}`);
        break;
      }
      if (event.text !== "") texts.push(event.text);
      if (event.finishReason !== undefined) this.finishReason = event.finishReason;
      if (event.matchedStop !== undefined) this.matchedStop = event.matchedStop;
      if (event.usage?.promptTokens !== undefined) this.tokensIn = event.usage.promptTokens;
    }
    if (!this.stops) return texts;
    const step = this.stops.pushAll(texts);
    this.cut = step.stopped;
    return step.texts;
  }

  /** How the stream ended, once it did; throws the failure it carried or its premature end. */
  result(signal: AbortSignal, sink: GenerationSink, stopsSent: boolean): GenerationResult {
    if (this.failure) throw this.failure;
    const result: GenerationResult = { stopReason: StopReason.STOP_REASON_STOP };
    if (!this.cut) {
      if (signal.aborted && this.finishReason === undefined) return CANCELED;
      // "[DONE]" alone also ends a generation well: some servers put no finish_reason on any chunk.
      if (this.finishReason === undefined && !this.done) throw this.failed("the stream ended before the generation finished");
      const held = this.stops?.flush() ?? [];
      if (held.length > 0) sink.tokens(held);
      result.stopReason = stopReasonOf(this.finishReason, stopsSent, this.matchedStop);
    }
    if (this.tokensIn !== undefined) result.tokensIn = this.tokensIn;
    return result;
  }

  private failed(detail: string): WorkerFailure {
    return new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR, this.http.redact(`POST ${this.path}: ${detail}`));
  }
}

function parseFrame(data: string): StreamEvent | undefined {
  try {
    return parseStreamData(data);
  } catch {
    return undefined;
  }
}
