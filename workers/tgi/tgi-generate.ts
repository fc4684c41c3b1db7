// One generation through TGI's POST /generate_stream (SSE): frames to the
// sink in socket-chunk batches, the finish from the last frame, in-stream
// errors, cancel, and the task's stop strings cut out of the text (TGI sends
// a matched stop sequence along).
import { StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import type { GenerationResult, GenerationSink } from "../engine-adapter.js";
import type { StopMatcher } from "../engine/stop-matcher.js";
import type { EngineHttp } from "../http/engine-http.js";
import { failureOf } from "../http/engine-errors.js";
import type { SseFrame } from "../http/stream-decoder.js";
import { generateRequestBody, parseStreamEvent } from "./tgi-protocol.js";

export const GENERATE_PATH = "/generate_stream";

export interface TgiGeneration {
  http: EngineHttp;
  /** Strings to redact from the engine's messages. */
  secrets: readonly string[];
  request: SubmitRequest;
  signal: AbortSignal;
  sink: GenerationSink;
  /** The task's stop strings, when it sent some. */
  stops: StopMatcher | undefined;
}

/** What one batch of frames carried: its token texts, and the last frame's finish or an error frame. */
interface Batch {
  texts: string[];
  /** Frames with a token (special ones too): TGI has accepted the prompt once there is one. */
  tokens: number;
  end?: { stopReason: StopReason; tokensIn?: number };
  failure?: Error;
}

/**
 * Streams one generation into the sink. TGI answers 200 at once and reports
 * refusals as error frames, so `started` comes with the first token (or the
 * last frame), not the status line. Resolves CANCELED when `signal` aborts.
 */
export async function streamGenerate(g: TgiGeneration): Promise<GenerationResult> {
  const { http, request, signal, sink, stops } = g;
  let result: GenerationResult | undefined;
  let started = false;
  try {
    const stream = await http.stream(GENERATE_PATH, generateRequestBody(request), { signal, format: "sse", retryConnect: true });
    for await (const frames of stream.batches) {
      // Anything after the last frame is not TGI's; reading on lets the connection end cleanly and be reused.
      if (result) continue;
      const batch = readBatch(frames, g);
      if (!started && (batch.tokens > 0 || batch.end)) {
        started = true;
        sink.started(batch.end?.tokensIn ?? 0);
      }
      const step = stops ? stops.pushAll(batch.texts) : { texts: batch.texts, stopped: false };
      if (step.texts.length > 0) sink.tokens(step.texts);
      if (batch.failure) throw batch.failure;
      if (step.stopped) return withTokensIn({ stopReason: StopReason.STOP_REASON_STOP }, batch.end?.tokensIn);
      if (batch.end) result = finish(batch.end, sink, stops);
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
    secrets: g.secrets,
  });
}

/** The frames of one socket chunk, up to the last frame or an error frame. */
function readBatch(frames: readonly SseFrame[], g: TgiGeneration): Batch {
  const batch: Batch = { texts: [], tokens: 0 };
  for (const frame of frames) {
    const event = parseStreamEvent(frame.data, g.stops !== undefined);
    if (event.type === "error") {
      batch.failure = failureOf({ method: "POST", path: GENERATE_PATH, kind: event.kind, body: event.body, secrets: g.secrets });
      break;
    }
    batch.tokens++;
    if (event.text !== undefined) batch.texts.push(event.text);
    if (event.end) {
      batch.end = event.end;
      break;
    }
  }
  return batch;
}

/** The result of the last frame; what the stop matcher still holds was no stop string after all. */
function finish(end: NonNullable<Batch["end"]>, sink: GenerationSink, stops: StopMatcher | undefined): GenerationResult {
  const held = stops?.flush() ?? [];
  if (held.length > 0) sink.tokens(held);
  return withTokensIn({ stopReason: end.stopReason }, end.tokensIn);
}

function withTokensIn(result: GenerationResult, tokensIn: number | undefined): GenerationResult {
  if (tokensIn !== undefined) result.tokensIn = tokensIn;
  return result;
}
