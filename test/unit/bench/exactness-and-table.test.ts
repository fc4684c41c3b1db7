import test from "ava";
import { countedToken } from "../../fakes/counted-tokens.js";
import { StreamCheck } from "../../bench/exactness.js";
import { renderTable, tableRows, type BenchResults } from "../../bench/bench-table.js";

/** A check fed tokens by index (text as the fake sends it unless given), then an end frame counting `end` tokens. */
function verdictOf(indices: (number | [number, string])[], end: number | undefined, expected = 4): string | undefined {
  const check = new StreamCheck("s", expected);
  for (const i of indices) {
    if (typeof i === "number") check.token(i, countedToken(i));
    else check.token(i[0], i[1]);
  }
  if (end !== undefined) check.end(end);
  return check.verdict();
}

test("an exact stream passes; a lost, repeated, reordered, altered, short or unfinished one is named", (t) => {
  t.is(verdictOf([0, 1, 2, 3], 4), undefined);
  t.regex(verdictOf([0, 2, 3], 3) ?? "", /token 2 where 1 was due \(lost\)/);
  t.regex(verdictOf([0, 1, 1, 2, 3], 4) ?? "", /token 1 where 2 was due \(repeated\)/);
  t.regex(verdictOf([1, 0, 2, 3], 4) ?? "", /token 1 where 0 was due/);
  t.regex(verdictOf([0, [1, " t7"], 2, 3], 4) ?? "", /token 1 reads " t7"/);
  t.regex(verdictOf([0, 1, 2], 3) ?? "", /3 tokens, 4 expected/);
  t.regex(verdictOf([0, 1, 2, 3], 5) ?? "", /end frame counts 5 tokens, the stream carried 4/);
  t.regex(verdictOf([0, 1, 2, 3], undefined) ?? "", /without an end frame/);
});

const FIGURES = {
  "ttft.c1.p50": 1,
  "ttft.c1.p99": 2,
  "ttft.c10.p50": 1,
  "ttft.c10.p99": 2,
  "ttft.c100.p50": 1,
  "ttft.c100.p99": 2,
  "ttft.c1000.p50": 1,
  "ttft.c1000.p99": 2,
  "request.per_s": 3000,
  "request.cpu_ms": 0.5,
  "request.cpu_ms.edge": 0.5,
  "stream.tokens_per_s": 100,
  "stream.cpu_s_per_1m": 1,
  "stream.cpu_s_per_1m.edge": 1,
  "open.rss_mb_per_1000": 1,
  "open.rss_mb_per_1000.edge": 1,
};

function results(nginx: boolean, problems: string[] = []): BenchResults {
  return {
    meta: {},
    setups: { direct: FIGURES, "llama-orch": FIGURES, ...(nginx ? { nginx: FIGURES } : {}) },
    orchOnly: { "core_rss.tasks": 10, "core_rss.start_mb": 100, "core_rss.end_mb": 100, "core_rss.kb_per_task": 0 },
    exactness: { checked: { direct: 1, "llama-orch": 1 }, problems },
    notes: [],
    profiles: {},
  };
}

test("the table has one row per figure and six columns; goals against a skipped nginx are n/a, not met", (t) => {
  const rows = tableRows(results(true));
  t.is(rows.length, 11);
  const lines = renderTable(rows).split("\n");
  t.is(lines.length, rows.length + 2);
  for (const line of lines) t.is(line.split(" | ").length, 6, line);
  t.true(
    rows.filter((r) => r.met !== undefined).every((r) => r.met),
    "equal figures meet every relative goal",
  );

  const alone = tableRows(results(false));
  t.is(alone.find((r) => r.goal === "≥ nginx")!.verdict, "n/a");
  t.is(alone.find((r) => r.goal === "≥ nginx")!.met, undefined);
  t.is(alone.find((r) => r.figure.startsWith("tokens/s"))!.nginx, "skipped");
});

test("a stream that was not exact fails the exactness row", (t) => {
  const row = tableRows(results(true, ["s: token 2 where 1 was due (lost)"])).at(-1)!;
  t.is(row.met, false);
  t.is(row.verdict, "1 NOT EXACT");
});
