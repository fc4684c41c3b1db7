// One streamed generation against an OpenAI-compatible server: request,
// SSE batches to the sink, finish reason, usage, in-stream errors, cancel.
import { StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure, type GenerationResult, type GenerationSink } from "../engine-adapter.js";
import type { EngineHttp } from "../http/engine-http.js";
import type { SseFrame } from "../http/stream-decoder.js";
import { openAiRequest, parseStreamData, stopReasonOf, type OpenAiApi, type StreamEvent } from "./openai-protocol.js";

export interface OpenAiGeneration {
  http: EngineHttp;
  /** The `model` field: the name the server serves the model under. */
  model: string;
  api: OpenAiApi;
  request: SubmitRequest;
  signal: AbortSignal;
  sink: GenerationSink;
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
  const { path, body } = openAiRequest(g.request, g.model, g.api);
  let batches: AsyncIterable<SseFrame[]>;
  try {
    // retryConnect: a refused connection sent nothing, so a second try cannot run the prompt twice.
    ({ batches } = await http.stream(path, body, { signal, format: "sse", retryConnect: true }));
  } catch (err) {
    if (signal.aborted) return CANCELED;
    throw err;
  }
  sink.started(0);

  const failed = (detail: string): WorkerFailure =>
    new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR, http.redact(`POST ${path}: ${detail}`));
  let finishReason: string | undefined;
  let done = false;
  let tokensIn: number | undefined;
  let failure: WorkerFailure | undefined;
  try {
    for await (const frames of batches) {
      // Read on to the end of the body after "[DONE]", so the keep-alive connection stays reusable.
      if (done) continue;
      const texts: string[] = [];
      for (const frame of frames) {
        const event = parseFrame(frame.data);
        if (event === undefined) {
          failure = failed(`invalid stream frame: ${JSON.stringify(frame.data.slice(0, 100))}`);
          break;
        }
        if (event.type === "done") {
          done = true;
          break;
        }
        if (event.type === "error") {
          failure = failed(`engine error in the stream: ${event.message}`);
          break;
        }
        if (event.text !== "") texts.push(event.text);
        if (event.finishReason !== undefined) finishReason = event.finishReason;
        if (event.usage?.promptTokens !== undefined) tokensIn = event.usage.promptTokens;
      }
      if (texts.length > 0) sink.tokens(texts);
      // Leaving the loop early closes the connection (EngineHttp destroys an unfinished response).
      if (failure) break;
    }
  } catch (err) {
    // A connection lost after the generation finished (only usage or "[DONE]" missing) loses nothing the caller needs.
    if (!done && finishReason === undefined) throw err;
  }
  if (failure) throw failure;
  if (signal.aborted && finishReason === undefined) return CANCELED;
  // "[DONE]" alone also ends a generation well: some servers put no finish_reason on any chunk.
  if (finishReason === undefined && !done) throw failed("the stream ended before the generation finished");
  const result: GenerationResult = { stopReason: stopReasonOf(finishReason) };
  if (tokensIn !== undefined) result.tokensIn = tokensIn;
  return result;
}

function parseFrame(data: string): StreamEvent | undefined {
  try {
    return parseStreamData(data);
  } catch {
    return undefined;
  }
}
