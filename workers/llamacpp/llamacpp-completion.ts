// One generation on a llama.cpp server: POST /completion with stream: true,
// read as SSE. The stream has no "[DONE]": it ends after a frame with
// `"stop": true`, or carries `{"error":{...}}` instead when the engine fails
// after the 200. Closing the connection is how llama.cpp learns to cancel.
import { StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import type { GenerationResult, GenerationSink, WorkerFailure } from "../engine-adapter.js";
import type { EngineHttp } from "../http/engine-http.js";
import { failureOf, kindOfStatus } from "../http/engine-errors.js";
import type { SseFrame } from "../http/stream-decoder.js";
import {
  ANY_SLOT,
  completionBody,
  decodeTimeMsOf,
  promptTokensOf,
  stopReasonOf,
  tokenTexts,
  type CompletionFrame,
  type CompletionSlot,
} from "./llamacpp-api.js";
import { renderChat } from "./llamacpp-chat.js";
import { completionSampling } from "./llamacpp-sampling.js";
import { stopsRequested } from "../engine/sampling-support.js";

export const COMPLETION_PATH = "/completion";

const CANCELED: GenerationResult = { stopReason: StopReason.STOP_REASON_CANCELED };

/**
 * Streams one completion into `sink`: `started` with the prompt token count
 * of the first frame, then one `tokens` call per socket chunk. Resolves
 * CANCELED once `signal` aborts (the HTTP request is closed by then).
 * `slot` pins the slot and hears the final frame. A chat is rendered into
 * its prompt first (llamacpp-chat.ts); malformed sampling is refused before
 * either request.
 */
export async function streamCompletion(
  http: EngineHttp,
  request: SubmitRequest,
  signal: AbortSignal,
  sink: GenerationSink,
  slot: CompletionSlot = ANY_SLOT,
): Promise<GenerationResult> {
  const sampling = completionSampling(request.sampling);
  const progress: Progress = { started: false, produced: 0 };
  let final: CompletionFrame | undefined;
  try {
    const prompt = request.messages.length > 0 ? await renderChat(http, request.messages, signal) : request.prompt;
    const body = completionBody(prompt, request.maxTokens, request.seed, slot.idSlot, sampling);
    // retryConnect: a refused connection sent nothing, so a restarting engine gets another try.
    const stream = await http.stream(COMPLETION_PATH, body, { signal, format: "sse", retryConnect: true });
    for await (const batch of stream.batches) {
      const chunk = readChunk(http, batch, sink, progress);
      // Tokens decoded before a failure in the same chunk were generated: they go out first.
      if (chunk.texts.length > 0) {
        progress.produced += chunk.texts.length;
        sink.tokens(chunk.texts);
      }
      if (chunk.failure) throw chunk.failure;
      final = chunk.final;
      if (final) break;
    }
  } catch (err) {
    if (signal.aborted) return CANCELED;
    throw err;
  }
  if (signal.aborted) return CANCELED;
  if (!final) {
    throw failureOf({
      method: "POST",
      path: COMPLETION_PATH,
      kind: WorkerErrorKind.WORKER_ERROR_KIND_RESET,
      cause: new Error(`the stream ended after ${progress.produced} tokens without its final frame`),
    });
  }
  slot.ended(final);
  return resultOf(final, progress, request, sink);
}

/** Whether `started` went to the sink yet, and how many tokens did. */
interface Progress {
  started: boolean;
  produced: number;
}

/** One socket chunk's frames: the token texts in it, and the in-stream failure or final frame that ends it. */
function readChunk(
  http: EngineHttp,
  batch: readonly SseFrame[],
  sink: GenerationSink,
  progress: Progress,
): { texts: string[]; failure?: WorkerFailure; final?: CompletionFrame } {
  const texts: string[] = [];
  for (const frame of batch) {
    const parsed = parseFrame(http, frame);
    if (parsed.error !== undefined) return { texts, failure: inStreamFailure(http, frame.data, parsed) };
    if (!progress.started) {
      progress.started = true;
      sink.started(promptTokensOf(parsed) ?? 0);
    }
    for (const text of tokenTexts(parsed)) texts.push(text);
    if (parsed.stop === true) return { texts, final: parsed };
  }
  return { texts };
}

/** The result the final frame reports: stop reason, the engine's own token count and decode time, and its speed to the sink. */
function resultOf(final: CompletionFrame, progress: Progress, request: SubmitRequest, sink: GenerationSink): GenerationResult {
  const tokensIn = promptTokensOf(final);
  if (!progress.started) sink.started(tokensIn ?? 0);
  const tps = final.timings?.predicted_per_second;
  if (typeof tps === "number" && Number.isFinite(tps)) sink.metrics?.({ tokensPerSecond: tps });
  const result: GenerationResult = { stopReason: stopReasonOf(final, progress.produced, request.maxTokens, stopsRequested(request)) };
  if (tokensIn !== undefined) result.tokensIn = tokensIn;
  const decodeTimeMs = decodeTimeMsOf(final);
  if (decodeTimeMs !== undefined) result.decodeTimeMs = decodeTimeMs;
  return result;
}

function parseFrame(http: EngineHttp, frame: SseFrame): CompletionFrame {
  try {
    const parsed: unknown = JSON.parse(frame.data);
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) return parsed;
  } catch {
    // reported below with the frame's start
  }
  throw failureOf({
    method: "POST",
    path: COMPLETION_PATH,
    kind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR,
    cause: new Error(`not a JSON object in the stream: ${http.redact(frame.data).slice(0, 120)}`),
  });
}

/**
 * The engine's in-stream error, with its own message. The error's `code` is
 * an HTTP status the engine would have answered before the stream began, so
 * it is classified like one (a 500 is ENGINE_ERROR); without one, ENGINE_ERROR.
 */
function inStreamFailure(http: EngineHttp, data: string, frame: CompletionFrame): WorkerFailure {
  const code = typeof frame.error === "object" && frame.error !== null ? frame.error.code : undefined;
  const kind = typeof code === "number" && code >= 400 && code <= 599 ? kindOfStatus(code) : WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR;
  // The client's redact() knows the API key, which the engine may echo in its message.
  return failureOf({ method: "POST", path: COMPLETION_PATH, kind, body: http.redact(data) });
}
