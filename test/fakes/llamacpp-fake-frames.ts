// The SSE frames of the llama.cpp fake's POST /completion stream (see
// llamacpp-fake.ts for the sources): the frame writer, a token's frame and
// the final frame with stop, slot, counts and timings.
import type http from "node:http";
import type { FakeLlamaCppBehaviour } from "./llamacpp-fake.js";

/** Writes one SSE frame, in pieces of `chunkBytes` (while the client is there) when set. */
export function frameWriter(
  res: http.ServerResponse,
  b: FakeLlamaCppBehaviour,
  open: () => boolean,
  pause: (ms: number) => Promise<void>,
): (frame: unknown) => Promise<void> {
  return async (frame) => {
    const bytes = Buffer.from(`data: ${JSON.stringify(frame)}\n\n`, "utf8");
    if (b.chunkBytes <= 0) {
      res.write(bytes);
      return;
    }
    for (let at = 0; at < bytes.length && open(); at += b.chunkBytes) {
      res.write(bytes.subarray(at, at + b.chunkBytes));
      await pause(b.splitDelayMs);
    }
  };
}

/** Token `i` of a completion: its text and id, id_slot -1 as builds send it before the final frame. */
export function tokenFrame(content: string, i: number, promptTokens: number): unknown {
  return {
    index: 0,
    content,
    tokens: [1000 + i],
    stop: false,
    id_slot: -1,
    tokens_predicted: i + 1,
    tokens_evaluated: promptTokens,
  };
}

export interface FinalFrameFacts {
  prompt: unknown;
  slot: number;
  promptTokens: number;
  count: number;
  nPredict: number;
  predictedMs: number;
  /** The stop string that ended the stream before n_predict, if one did. */
  stoppingWord?: string | undefined;
}

/** The last frame of a completion: stop, the slot, the counts and timings. */
export function finalFrame(b: FakeLlamaCppBehaviour, f: FinalFrameFacts): unknown {
  const { promptTokens, count, nPredict, predictedMs } = f;
  return {
    index: 0,
    content: "",
    tokens: [],
    id_slot: f.slot,
    stop: true,
    model: b.modelPath,
    tokens_predicted: count,
    tokens_evaluated: promptTokens,
    generation_settings: { n_ctx: b.ctx, n_predict: Number.isFinite(nPredict) ? nPredict : -1 },
    prompt: typeof f.prompt === "string" ? f.prompt : "",
    has_new_line: false,
    truncated: false,
    stop_type: count >= nPredict ? "limit" : f.stoppingWord !== undefined ? "word" : b.stopType,
    stopping_word: f.stoppingWord ?? "",
    tokens_cached: promptTokens + count,
    timings: {
      prompt_n: promptTokens,
      prompt_ms: 1.5,
      prompt_per_token_ms: 1.5 / promptTokens,
      prompt_per_second: (promptTokens * 1000) / 1.5,
      predicted_n: count,
      predicted_ms: predictedMs,
      predicted_per_token_ms: count > 0 ? predictedMs / count : 0,
      predicted_per_second: predictedMs > 0 ? (count * 1000) / predictedMs : 0,
    },
  };
}
