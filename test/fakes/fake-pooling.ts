// What the fake engines share for the workloads that are not generation
// (embeddings, rerank): deterministic vectors and relevance scores, so a test
// can compute what the engine must have answered for each input, and an
// answer held back for a while, so a test can cancel while the engine
// "computes". Each fake wraps them in its own server's answer shape.
import type http from "node:http";

/** Tokens as the fakes count them: whitespace-separated words, at least 1. */
export function wordCount(text: string): number {
  return Math.max(1, text.split(/\s+/).filter(Boolean).length);
}

/** A unit-length (L2) vector of `dims` values that depends only on `text`, as a pooled and normalized embedding would. */
export function fakeVector(text: string, dims: number): number[] {
  let h = 2166136261;
  for (const ch of text) h = Math.imul(h ^ ch.codePointAt(0)!, 16777619) >>> 0;
  const raw = Array.from({ length: dims }, (_, i) => {
    h = Math.imul(h ^ (i + 1), 2246822519) >>> 0;
    return h / 0xffffffff - 0.5;
  });
  const norm = Math.hypot(...raw) || 1;
  return raw.map((x) => x / norm);
}

/**
 * The relevance of `document` to `query` in (0, 1): the share of the query's
 * words the document contains, nudged by the document's position so that no
 * two documents tie and a sort by score is one order only.
 */
export function fakeRelevance(query: string, document: string, index: number): number {
  const words = new Set(document.toLowerCase().split(/\W+/).filter(Boolean));
  const asked = query.toLowerCase().split(/\W+/).filter(Boolean);
  const hits = asked.filter((w) => words.has(w)).length;
  return (hits + 1) / (asked.length + 2) - index * 1e-6;
}

/** Each document's index and score, best first (the order both servers answer in). */
export function rankedByScore(query: string, documents: readonly string[]): { index: number; score: number }[] {
  return documents.map((d, index) => ({ index, score: fakeRelevance(query, d, index) })).sort((a, b) => b.score - a.score);
}

/** Calls `answer` after `delayMs`, or never when the client leaves first (a cancel, as the engine sees it). */
export function answerAfter(res: http.ServerResponse, delayMs: number, answer: () => void): void {
  const timer = setTimeout(answer, delayMs);
  res.on("close", () => clearTimeout(timer));
}
