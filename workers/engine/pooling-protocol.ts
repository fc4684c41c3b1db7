// The wire shapes of the two workloads that are not generation, as both the
// llama.cpp server and vLLM speak them, as pure functions (pooling-call.ts
// does the I/O):
//   - embeddings, OpenAI's API: POST /v1/embeddings {input: [...]} ->
//     {data: [{index, embedding: [floats]}], usage: {prompt_tokens}}
//     (llama.cpp tools/server/README.md "POST /v1/embeddings"; vLLM docs
//     "Embeddings API", protocol.py EmbeddingResponse);
//   - rerank, Jina's (and Cohere's) API: POST /rerank {query, documents, top_n}
//     -> {results: [{index, relevance_score}], usage}, sorted by score, the
//     index naming the document (llama.cpp README "POST /reranking" and
//     server-common's format_response_rerank; vLLM docs "Re-rank API",
//     protocol.py RerankResponse).
// An answer that is not this shape is refused whole: a vector or score
// attributed to the wrong input is worse than none.

/** One vector per input, in input order. */
export interface Vectors {
  vectors: number[][];
  /** The engine's prompt token count, when it reports one. */
  tokensIn?: number;
}

/** One relevance score per document, in document order. */
export interface Scores {
  scores: number[];
  tokensIn?: number;
}

/** An engine's answer that breaks the documented shape; the caller reports it as ENGINE_ERROR. */
export class AnswerShapeError extends Error {
  override readonly name = "AnswerShapeError";
}

/** The embeddings request; `model` only for engines that route by it (vLLM). */
export function embeddingsBody(inputs: readonly string[], model: string | undefined): Record<string, unknown> {
  // "float" is the default, stated so that no server's base64 can arrive instead.
  return { ...(model !== undefined ? { model } : {}), input: [...inputs], encoding_format: "float" };
}

/** The rerank request, asking a score for every document. */
export function rerankBody(query: string, documents: readonly string[], model: string | undefined): Record<string, unknown> {
  // Both servers default top_n to all documents; said anyway, since every document needs its score.
  return { ...(model !== undefined ? { model } : {}), query, documents: [...documents], top_n: documents.length };
}

/** The vectors of an embeddings answer for `inputs` inputs, by their `index`. */
export function vectorsOf(answer: unknown, inputs: number): Vectors {
  if (!isObject(answer) || !Array.isArray(answer.data)) throw new AnswerShapeError('the answer has no "data" list');
  const vectors = byIndex(answer.data, inputs, "data", "input").map(([entry, at]) => vectorOf(entry.embedding, at));
  const tokensIn = tokensInOf(answer.usage);
  return tokensIn === undefined ? { vectors } : { vectors, tokensIn };
}

/** The scores of a rerank answer for `documents` documents, back in document order. */
export function scoresOf(answer: unknown, documents: number): Scores {
  if (!isObject(answer) || !Array.isArray(answer.results)) throw new AnswerShapeError('the answer has no "results" list');
  const scores = byIndex(answer.results, documents, "results", "document").map(([entry, at]) => {
    const score = entry.relevance_score;
    if (typeof score !== "number" || !Number.isFinite(score)) throw new AnswerShapeError(`${at}.relevance_score is not a finite number`);
    return score;
  });
  const tokensIn = tokensInOf(answer.usage);
  return tokensIn === undefined ? { scores } : { scores, tokensIn };
}

/**
 * The entries of `list` in the order of their `index` field, with where each
 * was in the answer (for messages): exactly one entry per index 0..n-1.
 */
function byIndex(list: unknown[], n: number, field: string, what: string): [Record<string, unknown>, string][] {
  if (list.length !== n) throw new AnswerShapeError(`"${field}" has ${list.length} entries for ${n} ${what}s`);
  const slots = new Array<[Record<string, unknown>, string] | undefined>(n);
  list.forEach((entry, position) => {
    const at = `${field}[${position}]`;
    if (!isObject(entry)) throw new AnswerShapeError(`${at} is not an object`);
    const { index } = entry;
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= n)
      throw new AnswerShapeError(`${at}.index ${String(JSON.stringify(index)).slice(0, 40)} names none of the ${n} ${what}s`);
    if (slots[index]) throw new AnswerShapeError(`${what} ${index} appears twice`);
    slots[index] = [entry, at];
  });
  // n entries with distinct indexes in 0..n-1 fill every slot.
  return slots as [Record<string, unknown>, string][];
}

function vectorOf(embedding: unknown, at: string): number[] {
  if (typeof embedding === "string") throw new AnswerShapeError(`${at}.embedding is base64, not the floats asked for`);
  if (!Array.isArray(embedding) || embedding.length === 0) throw new AnswerShapeError(`${at}.embedding is not a list of numbers`);
  if (Array.isArray(embedding[0]))
    throw new AnswerShapeError(`${at}.embedding is one vector per token (pooling "none"); one vector per input needs a pooled model`);
  for (const x of embedding) {
    if (typeof x !== "number" || !Number.isFinite(x)) throw new AnswerShapeError(`${at}.embedding has a value that is not a finite number`);
  }
  return embedding as number[];
}

/**
 * `usage.prompt_tokens`, else `usage.total_tokens` (older vLLM releases'
 * RerankUsage has only that; neither workload produces tokens, so they are
 * equal).
 * 0 counts as not reported: every input has a token, and llama.cpp builds
 * before usage was filled in answered 0.
 */
function tokensInOf(usage: unknown): number | undefined {
  if (!isObject(usage)) return undefined;
  for (const n of [usage.prompt_tokens, usage.total_tokens]) {
    if (typeof n === "number" && Number.isSafeInteger(n) && n > 0) return n;
  }
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
