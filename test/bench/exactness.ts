/**
 * The bench's check of every stream it reads: token indices start at 0 and
 * follow each other, each token's text is the counted token the fake engine
 * sent for that index (test/fakes/counted-tokens.ts), the stream ends the
 * way its protocol says a finished stream ends, and it held exactly N
 * tokens. A stream that fails keeps its first problem; the bench prints them
 * all and exits non-zero, whatever the figures say.
 */
import { countedToken } from "../fakes/counted-tokens.js";

export class StreamCheck {
  private next = 0;
  private ended = false;
  private problem: string | undefined;

  constructor(
    private readonly label: string,
    private readonly expected: number,
  ) {}

  get tokens(): number {
    return this.next;
  }

  /** One token frame as the client read it. */
  token(index: number, text: string): void {
    if (this.problem) return;
    if (this.ended) this.fail(`token ${index} after the end`);
    else if (index !== this.next) this.fail(`token ${index} where ${this.next} was due (${index < this.next ? "repeated" : "lost"})`);
    else if (text !== countedToken(index))
      this.fail(`token ${index} reads ${JSON.stringify(text)}, not ${JSON.stringify(countedToken(index))}`);
    else this.next++;
  }

  /** The stream's own end frame, with the token count it reports. */
  end(reportedCount: number): void {
    if (this.problem) return;
    if (this.ended) return this.fail("a second end frame");
    this.ended = true;
    if (reportedCount !== this.next) this.fail(`the end frame counts ${reportedCount} tokens, the stream carried ${this.next}`);
  }

  fail(what: string): void {
    this.problem ??= `${this.label}: ${what}`;
  }

  /** The first problem so far: for a stream the bench closed on purpose. */
  soFar(): string | undefined {
    return this.problem;
  }

  /** Undefined when the stream was exact; called once the body has ended. */
  verdict(): string | undefined {
    if (!this.problem && !this.ended) this.fail(`the body ended after ${this.next} tokens without an end frame`);
    if (!this.problem && this.next !== this.expected) this.fail(`${this.next} tokens, ${this.expected} expected`);
    return this.problem;
  }
}

/** Every stream the bench checked, per setup, and the problems of those that were not exact. */
export class ExactnessLedger {
  readonly checked = new Map<string, number>();
  readonly problems: string[] = [];

  record(setup: string, verdict: string | undefined): void {
    this.checked.set(setup, (this.checked.get(setup) ?? 0) + 1);
    if (verdict !== undefined) this.problems.push(verdict);
  }
}
