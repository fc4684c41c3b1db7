// Turning a stream of token ids into text pieces that are always whole
// characters. A token may carry only part of a UTF-8 character (byte-fallback
// tokens: random and real models alike emit them), and llama.cpp's
// detokenizer renders an incomplete character as U+FFFD. So the text of new
// tokens is decoded together with the tokens before them (the "prefix
// window" technique of Hugging Face's text-generation-inference), and a token
// whose text ends mid-character is held back until a later token completes it.

/** Renders tokens as text; `before` are the tokens that precede them (for leading-space rules). */
export type Detokenize = (tokens: readonly number[], before: readonly number[]) => string;

const REPLACEMENT = "\uFFFD";
/** A UTF-8 character has at most 4 bytes: held longer, the bytes can never form one. */
export const MAX_HELD_TOKENS = 4;
/** Tokens of context kept before the window; enough for any tokenizer's leading-space rule. */
const CONTEXT_TOKENS = 4;

/**
 * Per token pushed, zero or more texts to emit, one per token, in order: a
 * held token is emitted together with the token that completes its
 * character (the held ones with empty text, the completing one with the
 * whole character). Bytes that cannot form a character come out as U+FFFD,
 * which is valid text: the client never receives an invalid UTF-8 sequence.
 */
export class IncrementalText {
  private readonly tokens: number[];
  /** tokens[prefix..read) were emitted; their text is the diff base for what follows. */
  private prefix: number;
  private read: number;

  constructor(
    private readonly detokenize: Detokenize,
    /** The prompt's tokens, so the first output token renders as a continuation (its leading space kept). */
    promptTail: readonly number[] = [],
  ) {
    this.tokens = promptTail.slice(-CONTEXT_TOKENS);
    this.prefix = this.tokens.length;
    this.read = this.tokens.length;
  }

  /** Number of output tokens waiting for the rest of their character. */
  get held(): number {
    return this.tokens.length - this.read;
  }

  /** Adds one token; returns the texts of the tokens now released (empty while it is held). */
  push(token: number): string[] {
    this.tokens.push(token);
    const text = this.pendingText(this.tokens.length);
    if (!text.endsWith(REPLACEMENT)) return this.release(text, this.tokens.length);
    if (this.held < MAX_HELD_TOKENS) return [];
    // Still no whole character after four tokens: the bytes before the newest token never will be one.
    // Their rendering is final, and decoding starts afresh at the newest token, which may begin a character.
    const end = this.tokens.length - 1;
    const out = this.release(this.pendingText(end), end);
    this.prefix = this.read;
    return out;
  }

  /** At the end of a generation: whatever is still held, as it stands. */
  flush(): string[] {
    return this.held === 0 ? [] : this.release(this.pendingText(this.tokens.length), this.tokens.length);
  }

  /** The text the unreleased tokens up to `end` add after what was already emitted. */
  private pendingText(end: number): string {
    const before = this.tokens.slice(Math.max(0, this.prefix - CONTEXT_TOKENS), this.prefix);
    const base = this.detokenize(this.tokens.slice(this.prefix, this.read), before);
    const all = this.detokenize(this.tokens.slice(this.prefix, end), before);
    // The base is a prefix of the longer rendering; should a detokenizer ever disagree, nothing is lost by emitting the longer one.
    return all.startsWith(base) ? all.slice(base.length) : all;
  }

  /** Releases the held tokens up to `end`: one text per token, the text on the last (the others empty). */
  private release(text: string, end: number): string[] {
    const n = end - this.read;
    const out = new Array<string>(n).fill("");
    out[n - 1] = text;
    this.prefix = this.read;
    this.read = end;
    // Only the window and its context are ever read again.
    const drop = Math.max(0, this.prefix - CONTEXT_TOKENS);
    if (drop > 256) {
      this.tokens.splice(0, drop);
      this.prefix -= drop;
      this.read -= drop;
    }
    return out;
  }
}
