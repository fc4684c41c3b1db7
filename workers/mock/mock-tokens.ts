import { createHash } from "node:crypto";

/**
 * The mock's vocabulary. A few non-ASCII words (accents, CJK, an emoji outside
 * the BMP) make every hop's UTF-8 handling part of every test that streams.
 */
const VOCABULARY = [
  "the",
  "a",
  "model",
  "token",
  "stream",
  "orchestrator",
  "queue",
  "slot",
  "replica",
  "pool",
  "engine",
  "prompt",
  "cache",
  "decode",
  "batch",
  "worker",
  "llama",
  "context",
  "seed",
  "sample",
  "latency",
  "throughput",
  "session",
  "budget",
  "is",
  "runs",
  "waits",
  "streams",
  "yields",
  "emits",
  "places",
  "schedules",
  "quickly",
  "slowly",
  "again",
  "today",
  "here",
  "there",
  "and",
  "or",
  "of",
  "to",
  "in",
  "on",
  "with",
  "from",
  "into",
  "over",
  "café",
  "naïve",
  "über",
  "日本",
  "東京",
  "🙂",
  "🚀",
  "Ωmega",
  "résumé",
  "jalapeño",
  "smörgåsbord",
  "façade",
  "ñandú",
  "zürich",
  ".",
  ",",
] as const;

// Later tokens carry their leading space; precomputed so the hot loop concatenates nothing.
const SPACED = VOCABULARY.map((w) => ` ${w}`);

/**
 * A deterministic token sequence for (prompt, seed): sha256 of both seeds a
 * mulberry32 generator that picks words. Same input, byte-identical output.
 */
export class MockTokenSource {
  private state: number;
  private emitted = 0;

  constructor(prompt: string, seed: number) {
    this.state = createHash("sha256").update(`${seed}\u0000${prompt}`).digest().readUInt32LE(0);
  }

  next(): string {
    const word = this.nextRandom() % VOCABULARY.length;
    return this.emitted++ === 0 ? VOCABULARY[word]! : SPACED[word]!;
  }

  /** mulberry32: tiny, fast, and good enough to look like text. */
  private nextRandom(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.state ^ (this.state >>> 15), 1 | this.state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  }
}

/** The mock's prompt token count: whitespace-separated words, at least one. */
export function countPromptTokens(prompt: string): number {
  return Math.max(1, prompt.match(/\S+/g)?.length ?? 0);
}
