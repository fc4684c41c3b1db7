// How the mock honours sampling parameters and chats. It has no model, so
// "honouring" is what a deterministic engine can do: every sampling parameter
// changes the text as a function of its value (same parameters, same text),
// stop strings really end the generation, and a chat is rendered with a
// trivial template before it becomes the prompt.
import type { ChatMessage, SamplingParams } from "../../contracts/gen/llama_orch/v1/common.js";

/** The sampling fields the mock honours, as its Info.features "sampling" list announces them. */
export const MOCK_SAMPLING_FIELDS = [
  "temperature",
  "top_p",
  "top_k",
  "min_p",
  "repeat_penalty",
  "presence_penalty",
  "frequency_penalty",
  "stop",
  "logit_bias",
] as const;

/** A trivial chat template: one `<|role|>content` line per message, then the assistant's turn. */
export function renderMockChat(messages: readonly ChatMessage[]): string {
  return messages.map((m) => `<|${m.role}|>${m.content}`).join("\n") + "\n<|assistant|>";
}

/**
 * The part of the token source's seed that comes from sampling: empty when
 * nothing is set (so plain tasks keep their text), else the set values in a
 * fixed order. Stop strings are left out: they cut the text, not change it.
 */
export function samplingKey(s: SamplingParams | undefined): string {
  if (!s) return "";
  const parts = [s.temperature, s.topP, s.topK, s.minP, s.repeatPenalty, s.presencePenalty, s.frequencyPenalty].map((v) =>
    v === undefined ? "" : String(v),
  );
  const bias = Object.entries(s.logitBias)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const key = [...parts, bias].join("|");
  return /^\|*$/.test(key) ? "" : `\u0000sampling:${key}`;
}
