// Stop sequences as the fake engines apply them to their listed tokens: the
// stream ends at the token that completes the first stop string. Servers
// differ in whether the stop string itself is sent: llama.cpp ("These words
// will not be included in the completion"), vLLM (include_stop_str_in_output
// false by default) and OpenAI cut it; TGI sends it (its generated_text ends
// with the stop sequence).

export interface StopPlan {
  /** The token texts streamed, in order. */
  tokens: string[];
  /** The stop string that ended the stream; undefined when none matched. */
  matched?: string;
}

/** `tokens` as streamed by a server that stops at the first of `stops`; `include` sends the stop string too. */
export function cutAtStop(tokens: readonly string[], stops: readonly string[], include: boolean): StopPlan {
  let text = "";
  for (let i = 0; i < tokens.length; i++) {
    text += tokens[i]!;
    const hit = firstStop(text, stops);
    if (!hit) continue;
    if (include) return { tokens: tokens.slice(0, i + 1), matched: hit.stop };
    // Tokens wholly before the stop string, then what of the straddling ones precedes it.
    const kept: string[] = [];
    let at = 0;
    for (let j = 0; j <= i && at < hit.at; j++) {
      const piece = tokens[j]!.slice(0, hit.at - at);
      if (piece !== "") kept.push(piece);
      at += tokens[j]!.length;
    }
    return { tokens: kept, matched: hit.stop };
  }
  return { tokens: [...tokens] };
}

function firstStop(text: string, stops: readonly string[]): { at: number; stop: string } | undefined {
  let best: { at: number; stop: string } | undefined;
  for (const stop of stops) {
    const at = stop === "" ? -1 : text.indexOf(stop);
    if (at >= 0 && (!best || at < best.at)) best = { at, stop };
  }
  return best;
}

/** The request's stop strings, whatever shape the request gave them in (a list, one string, or none). */
export function stopsOf(value: unknown): string[] {
  if (typeof value === "string") return [value];
  return Array.isArray(value) ? value.filter((s): s is string => typeof s === "string") : [];
}
