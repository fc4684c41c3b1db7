// What the llama.cpp server says, as this adapter reads it: the JSON shapes of
// POST /completion stream frames, GET /props, GET /slots and POST
// /slots/{id}?action=erase, and the pure functions that turn them into our terms. Field names follow
// tools/server/README.md of ggml-org/llama.cpp; every field is optional here
// because builds differ and a missing figure must not fail a generation.
import { StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import type { CompletionSampling } from "./llamacpp-sampling.js";

/** One `data:` frame of POST /completion with `stream: true`. */
export interface CompletionFrame {
  /** The next token's text; "" on the final frame. */
  content?: string;
  /** Token ids behind `content`: usually one, more when a multi-byte character spanned tokens. */
  tokens?: number[];
  stop?: boolean;
  id_slot?: number;
  tokens_predicted?: number;
  /** Prompt tokens, cached ones included. */
  tokens_evaluated?: number;
  /** On the final frame: "eos" | "limit" | "word" ("none" while generating). */
  stop_type?: string;
  // Builds before stop_type had one flag per reason.
  stopped_eos?: boolean;
  stopped_word?: boolean;
  stopped_limit?: boolean;
  /** The context filled up during generation. */
  truncated?: boolean;
  tokens_cached?: number;
  timings?: CompletionTimings;
  /** An engine failure after the 200: `{"error":{"code":500,"message":...,"type":"server_error"}}`. */
  error?: { code?: number; message?: string; type?: string } | string;
}

export interface CompletionTimings {
  /** Prompt tokens actually processed (the uncached suffix). */
  prompt_n?: number;
  prompt_ms?: number;
  predicted_n?: number;
  predicted_ms?: number;
  predicted_per_second?: number;
}

/** What this adapter keeps of GET /props. */
export interface LlamaCppProps {
  /** Per-slot context (`default_generation_settings.n_ctx`); 0 when not reported. */
  ctxPerSlot: number;
  /** `total_slots` (the server's --parallel); 0 when not reported. */
  totalSlots: number;
  modelPath: string;
  /** `build_info`, e.g. "b4000-abc123"; "" when not reported. */
  buildInfo: string;
}

/** The request body of one streamed completion: the task's sampling fields as well (llamacpp-sampling.ts). */
export interface CompletionBody extends CompletionSampling {
  prompt: string;
  n_predict: number;
  stream: true;
  /** Reuse the KV cache of a slot's previous prompt; the engine's default too, stated so it cannot change under us. */
  cache_prompt: true;
  seed?: number;
  /** "Assign the completion task to an specific slot. If is -1 the task will be assigned to a Idle slot. Default: -1": sent only to pin. */
  id_slot?: number;
}

/** Which slot a completion asks for, and who hears how it ended on which slot. */
export interface CompletionSlot {
  /** id_slot; -1 for any idle slot. */
  idSlot: number;
  /** The final frame (its id_slot and tokens_cached); not called when the stream fails or is cancelled. */
  ended(final: CompletionFrame): void;
}

export const ANY_SLOT: CompletionSlot = { idSlot: -1, ended: () => {} };

/** llama.cpp seeds are uint32 and 0xFFFFFFFF (LLAMA_DEFAULT_SEED) means "random". */
const SEED_RANGE = 0xffffffff;

/**
 * Our int64 seed as a llama.cpp seed: values outside 0..4294967294 are folded
 * into it (mod 2^32-1), so every seed stays a fixed, non-random seed.
 */
export function engineSeed(seed: number): number {
  const folded = seed % SEED_RANGE;
  return folded < 0 ? folded + SEED_RANGE : folded;
}

export function completionBody(
  prompt: string,
  maxTokens: number,
  seed: number | undefined,
  idSlot = -1,
  sampling: CompletionSampling = {},
): CompletionBody {
  const body: CompletionBody = { prompt, n_predict: maxTokens, stream: true, cache_prompt: true, ...sampling };
  if (seed !== undefined) body.seed = engineSeed(seed);
  if (idSlot >= 0) body.id_slot = idSlot;
  return body;
}

/**
 * The slot a completion ran on and the tokens it holds after it, from the
 * final frame: `id_slot` (-1 on the frames before it) and `tokens_cached`
 * ("Number of tokens from the prompt which could be re-used from previous
 * completion (n_past)").
 */
export function servedSlotOf(final: CompletionFrame): { slot: number; tokens: number | undefined } | undefined {
  const slot = count(final.id_slot);
  return slot === undefined ? undefined : { slot, tokens: count(final.tokens_cached) };
}

/** `n_erased` of POST /slots/{id}?action=erase ({"id_slot": 0, "n_erased": 1745}); undefined when missing. */
export function erasedTokensOf(body: unknown): number | undefined {
  return isObject(body) ? count(body.n_erased) : undefined;
}

/**
 * The frame's token texts, one per token id: `content` for the first and ""
 * for the rest, so a character that took several tokens still counts as that
 * many tokens. A frame without content or ids (a progress frame) has none.
 */
export function tokenTexts(frame: CompletionFrame): string[] {
  const content = typeof frame.content === "string" ? frame.content : "";
  const ids = Array.isArray(frame.tokens) ? frame.tokens.length : 0;
  const n = ids > 0 ? ids : content !== "" ? 1 : 0;
  if (n === 0) return [];
  const texts = new Array<string>(n).fill("");
  texts[0] = content;
  return texts;
}

/**
 * The stop reason of the final frame; `produced` and `maxTokens` decide when
 * the engine did not say. A stopping word is the task's own stop string
 * (STOP) when the task sent some (`stop_type` "word": "Stopped due to
 * encountering a stopping word from `stop` JSON array provided"), else a
 * word the server was configured with (STOP_WORD).
 */
export function stopReasonOf(frame: CompletionFrame, produced: number, maxTokens: number, stopsAsked = false): StopReason {
  const word = stopsAsked ? StopReason.STOP_REASON_STOP : StopReason.STOP_REASON_STOP_WORD;
  switch (frame.stop_type) {
    case "limit":
      return StopReason.STOP_REASON_MAX_TOKENS;
    case "eos":
      return StopReason.STOP_REASON_EOS;
    case "word":
      return word;
  }
  if (frame.stopped_word) return word;
  if (frame.stopped_limit) return StopReason.STOP_REASON_MAX_TOKENS;
  if (frame.stopped_eos) return StopReason.STOP_REASON_EOS;
  return produced >= maxTokens ? StopReason.STOP_REASON_MAX_TOKENS : StopReason.STOP_REASON_EOS;
}

/** Prompt tokens: `tokens_evaluated` counts the cached prefix too, `timings.prompt_n` only what was processed. */
export function promptTokensOf(frame: CompletionFrame): number | undefined {
  return count(frame.tokens_evaluated) ?? count(frame.timings?.prompt_n);
}

export function decodeTimeMsOf(frame: CompletionFrame): number | undefined {
  const ms = frame.timings?.predicted_ms;
  return typeof ms === "number" && Number.isFinite(ms) && ms >= 0 ? Math.round(ms) : undefined;
}

/** GET /props as LlamaCppProps; undefined when the body is not an object. */
export function propsOf(body: unknown): LlamaCppProps | undefined {
  if (!isObject(body)) return undefined;
  const settings = isObject(body.default_generation_settings) ? body.default_generation_settings : {};
  return {
    // Builds before slots had a top-level n_ctx; current ones only the per-slot one.
    ctxPerSlot: count(settings.n_ctx) ?? count(body.n_ctx) ?? 0,
    totalSlots: count(body.total_slots) ?? 0,
    modelPath: typeof body.model_path === "string" ? body.model_path : "",
    buildInfo: typeof body.build_info === "string" ? body.build_info : "",
  };
}

/** Idle slots in a GET /slots answer; undefined when it is not a list of slots. */
export function idleSlotsOf(body: unknown): number | undefined {
  if (!Array.isArray(body)) return undefined;
  let idle = 0;
  for (const slot of body) {
    if (!isObject(slot)) return undefined;
    // `state` (0 idle, 1 processing) is what builds before is_processing reported.
    const busy = typeof slot.is_processing === "boolean" ? slot.is_processing : slot.state !== undefined && slot.state !== 0;
    if (!busy) idle++;
  }
  return idle;
}

function count(v: unknown): number | undefined {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
