// Stop sequences for engines that do not match them themselves (the mock,
// the embedded engine): generation ends before the first occurrence of any
// stop string, which is never part of the output. Text that could be the
// start of a stop string is held back until it either completes one or
// cannot any more, so no client ever sees a stop string or a piece of one.

export interface StopStep {
  /** Texts of the tokens released by this step, one per token, in order. */
  texts: string[];
  /** A stop string matched: nothing after `texts` may be emitted. */
  stopped: boolean;
}

export class StopMatcher {
  /** Texts of tokens not released yet, each a possible start of a stop string. */
  private held: string[] = [];
  private stopped = false;

  constructor(private readonly stops: readonly string[]) {}

  /** Adds one token's text; returns the tokens now safe to emit, or the cut at a stop string. */
  push(text: string): StopStep {
    if (this.stopped) return { texts: [], stopped: true };
    if (this.stops.length === 0) return { texts: [text], stopped: false };
    this.held.push(text);
    const pending = this.held.join("");
    const at = firstStop(pending, this.stops);
    if (at !== undefined) {
      this.stopped = true;
      return { texts: this.release(pending.slice(0, at), true), stopped: true };
    }
    const keep = longestStopPrefixSuffix(pending, this.stops);
    if (keep === 0) return { texts: this.release(pending, false), stopped: false };
    // Release the tokens wholly before the held-back suffix; keep the rest.
    let kept = 0;
    let i = this.held.length;
    while (i > 0 && kept < keep) kept += this.held[--i]!.length;
    const released = this.held.slice(0, i);
    this.held = this.held.slice(i);
    return { texts: released, stopped: false };
  }

  /** A batch of token texts in order: what is safe to emit of them, up to a stop string when one matches (the rest is dropped). */
  pushAll(texts: readonly string[]): StopStep {
    const out: string[] = [];
    for (const text of texts) {
      const step = this.push(text);
      for (const released of step.texts) out.push(released);
      if (step.stopped) return { texts: out, stopped: true };
    }
    return { texts: out, stopped: this.stopped };
  }

  /** At the end of the generation: what is held was not a stop string after all. */
  flush(): string[] {
    if (this.stopped || this.held.length === 0) return [];
    return this.release(this.held.join(""), false);
  }

  /**
   * The held tokens as texts to emit: one per token, the text on the last one
   * (the earlier held ones empty). At a stop, tokens that hold nothing before
   * the stop string are dropped rather than emitted empty.
   */
  private release(text: string, atStop: boolean): string[] {
    const n = atStop ? Math.min(this.held.length, tokensCovering(this.held, text.length)) : this.held.length;
    this.held = [];
    if (n === 0) return [];
    const out = new Array<string>(n).fill("");
    out[n - 1] = text;
    return out;
  }
}

/** Index of the earliest stop string in `text`, if any. */
function firstStop(text: string, stops: readonly string[]): number | undefined {
  let best: number | undefined;
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at >= 0 && (best === undefined || at < best)) best = at;
  }
  return best;
}

/** Length of the longest suffix of `text` that some stop string starts with. */
function longestStopPrefixSuffix(text: string, stops: readonly string[]): number {
  let best = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
      if (text.endsWith(s.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}

/** How many of the leading tokens it takes to cover `length` characters (at least one when length > 0). */
function tokensCovering(tokens: readonly string[], length: number): number {
  if (length === 0) return 0;
  let covered = 0;
  for (let i = 0; i < tokens.length; i++) {
    covered += tokens[i]!.length;
    if (covered >= length) return i + 1;
  }
  return tokens.length;
}
