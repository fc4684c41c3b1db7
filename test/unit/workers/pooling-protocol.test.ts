// The embeddings and rerank answers as pooling-protocol.ts reads them: what
// the servers document, and a refusal for everything else.
import test from "ava";
import { AnswerShapeError, embeddingsBody, rerankBody, scoresOf, vectorsOf } from "../../../workers/engine/pooling-protocol.js";

test("embeddings: vectors by index whatever their order in the answer, tokens from usage.prompt_tokens", (t) => {
  const answer = {
    object: "list",
    data: [
      { index: 1, object: "embedding", embedding: [0, 1] },
      { index: 0, object: "embedding", embedding: [1, 0] },
    ],
    usage: { prompt_tokens: 7, total_tokens: 7 },
  };
  t.deepEqual(vectorsOf(answer, 2), {
    vectors: [
      [1, 0],
      [0, 1],
    ],
    tokensIn: 7,
  });
});

test("rerank: scores back in document order from a best-first answer; total_tokens when prompt_tokens is absent", (t) => {
  // vLLM's older RerankUsage had total_tokens only.
  const answer = {
    id: "rerank-1",
    results: [
      { index: 2, document: { text: "c" }, relevance_score: 0.9 },
      { index: 0, document: { text: "a" }, relevance_score: 0.5 },
      { index: 1, document: { text: "b" }, relevance_score: -2.25 },
    ],
    usage: { total_tokens: 30 },
  };
  t.deepEqual(scoresOf(answer, 3), { scores: [0.5, -2.25, 0.9], tokensIn: 30 });
});

test("a usage of 0 tokens, or none, is no count: every input has a token, and older llama.cpp builds answered 0", (t) => {
  const data = [{ index: 0, embedding: [1] }];
  t.deepEqual(vectorsOf({ data, usage: { prompt_tokens: 0, total_tokens: 0 } }, 1), { vectors: [[1]] });
  t.deepEqual(vectorsOf({ data }, 1), { vectors: [[1]] });
  t.deepEqual(scoresOf({ results: [{ index: 0, relevance_score: 1 }], usage: { prompt_tokens: 0, total_tokens: 4 } }, 1), {
    scores: [1],
    tokensIn: 4,
  });
});

const BAD_EMBEDDINGS: [string, unknown, number, string][] = [
  ["no data", { results: [] }, 1, 'the answer has no "data" list'],
  ["not an object", [{ index: 0, embedding: [1] }], 1, 'the answer has no "data" list'],
  ["too few", { data: [{ index: 0, embedding: [1] }] }, 2, '"data" has 1 entries for 2 inputs'],
  ["an index out of range", { data: [{ index: 1, embedding: [1] }] }, 1, "data[0].index 1 names none of the 1 inputs"],
  ["no index", { data: [{ embedding: [1] }] }, 1, "data[0].index undefined names none of the 1 inputs"],
  [
    "an index twice",
    {
      data: [
        { index: 0, embedding: [1] },
        { index: 0, embedding: [2] },
      ],
    },
    2,
    "input 0 appears twice",
  ],
  ["base64", { data: [{ index: 0, embedding: "AACAPw==" }] }, 1, "data[0].embedding is base64, not the floats asked for"],
  [
    "per-token vectors",
    { data: [{ index: 0, embedding: [[1], [2]] }] },
    1,
    'data[0].embedding is one vector per token (pooling "none"); one vector per input needs a pooled model',
  ],
  ["an empty vector", { data: [{ index: 0, embedding: [] }] }, 1, "data[0].embedding is not a list of numbers"],
  ["a null in the vector", { data: [{ index: 0, embedding: [1, null] }] }, 1, "data[0].embedding has a value that is not a finite number"],
];

for (const [what, answer, n, message] of BAD_EMBEDDINGS) {
  test(`embeddings with ${what} are refused`, (t) => {
    t.throws(() => vectorsOf(answer, n), { instanceOf: AnswerShapeError, message });
  });
}

const BAD_RERANKS: [string, unknown, number, string][] = [
  ["no results", { data: [] }, 1, 'the answer has no "results" list'],
  ["a document missing (cut by top_n)", { results: [{ index: 1, relevance_score: 0.2 }] }, 2, '"results" has 1 entries for 2 documents'],
  [
    "a score that is not a number",
    { results: [{ index: 0, relevance_score: "high" }] },
    1,
    "results[0].relevance_score is not a finite number",
  ],
  ["TEI's score field", { results: [{ index: 0, score: 0.5 }] }, 1, "results[0].relevance_score is not a finite number"],
  ["a fractional index", { results: [{ index: 0.5, relevance_score: 1 }] }, 1, "results[0].index 0.5 names none of the 1 documents"],
];

for (const [what, answer, n, message] of BAD_RERANKS) {
  test(`rerank answers with ${what} are refused`, (t) => {
    t.throws(() => scoresOf(answer, n), { instanceOf: AnswerShapeError, message });
  });
}

test("requests: floats asked for explicitly, every document scored, model only when given", (t) => {
  t.deepEqual(embeddingsBody(["a", "b"], undefined), { input: ["a", "b"], encoding_format: "float" });
  t.deepEqual(embeddingsBody(["a"], "bge"), { model: "bge", input: ["a"], encoding_format: "float" });
  t.deepEqual(rerankBody("q", ["x", "y", "z"], "m"), { model: "m", query: "q", documents: ["x", "y", "z"], top_n: 3 });
  t.deepEqual(rerankBody("q", ["x"], undefined), { query: "q", documents: ["x"], top_n: 1 });
});
