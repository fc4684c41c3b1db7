import test from "ava";
import fc from "fast-check";
import { StopReason } from "../../../contracts/gen/llama_orch/v1/common.js";
import type { TaskEvent } from "../../../contracts/gen/llama_orch/v1/task.js";
import { readerStart, unseenPart } from "../../../core/tasks/reader-start.js";
import { TaskEventLog, withoutLeadingTokens } from "../../../core/tasks/task-event-log.js";

const RESTART = 1_000_000_000;

/** A recovered task's log as a restarted core builds it: `started`, then the replica's replay in batches. */
function recoveredLog(batches: string[][]): TaskEventLog {
  const log = new TaskEventLog();
  log.append({ $case: "started", started: { queuePosition: 0, predictedStartMs: 0 } });
  log.numberAfter(RESTART);
  log.append({ $case: "metrics", metrics: { poolId: "p", replicaId: "r", engineVersion: "" } });
  let i = 0;
  for (const texts of batches) {
    log.append({ $case: "tokens", tokens: { firstIndex: i, texts } });
    i += texts.length;
  }
  log.append({
    $case: "end",
    end: { tokensOut: i, decodeTimeMs: 0, tokensIn: 0, stopReason: StopReason.STOP_REASON_MAX_TOKENS, traceArtifactId: "" },
  });
  return log;
}

/** What a reader gets: the events from its start, with the tokens it has taken out. */
function read(log: TaskEventLog, request: Parameters<typeof readerStart>[1]): TaskEvent[] {
  const start = readerStart(log, request);
  const events = log.events.slice(start.index);
  if (start.skipTokens > 0) events[0] = withoutLeadingTokens(events[0]!, start.skipTokens);
  return start.has ? events.flatMap((e) => unseenPart(e, start.has!) ?? []) : events;
}

const tokenIndices = (events: TaskEvent[]) =>
  events.flatMap((e) =>
    e.kind?.$case === "tokens"
      ? e.kind.tokens.texts.map((_, j) => (e.kind as { tokens: { firstIndex: number } }).tokens.firstIndex + j)
      : [],
  );

test("after a restart the log numbers on above the earlier run's span", (t) => {
  const log = recoveredLog([["a", "b"]]);
  t.deepEqual(
    log.events.map((e) => e.seq),
    [1, RESTART + 1, RESTART + 2, RESTART + 4],
  );
  t.throws(() => log.numberAfter(5), { instanceOf: RangeError });
});

test("a reader from an earlier run gets every token it lacks exactly once, however the batches fall", (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.constant("x"), { minLength: 1, maxLength: 5 }), { maxLength: 8 }),
      fc.nat(50),
      fc.nat(40),
      (batches, had, seq) => {
        const total = batches.flat().length;
        const has = Math.min(had, total);
        const events = read(recoveredLog(batches), { resumeAfterSeq: seq + 1, tokensReceived: has });
        t.deepEqual(
          tokenIndices(events),
          Array.from({ length: total - has }, (_, i) => has + i),
        );
        t.false(
          events.some((e) => e.kind?.$case === "started"),
          "it has started already",
        );
        t.is(events.at(-1)?.kind?.$case, "end");
      },
    ),
  );
});

test("a fresh reader gets the whole recovered log; one of this run resumes by seq as ever", (t) => {
  const log = recoveredLog([["a", "b", "c"]]);
  t.deepEqual(
    read(log, {}).map((e) => e.kind?.$case),
    ["started", "metrics", "tokens", "end"],
  );
  const resumed = read(log, { resumeAfterSeq: RESTART + 3, tokensReceived: 0 });
  t.deepEqual(tokenIndices(resumed), [2], "this run's seq wins over a count");
});

test("results a reader has are left out by their index", (t) => {
  const has = { tokens: 0, results: 2 };
  const result = (index: number): TaskEvent => ({ seq: 9, kind: { $case: "embedding", embedding: { index, vector: [1] } } });
  t.is(unseenPart(result(1), has), undefined);
  t.deepEqual(unseenPart(result(2), has), result(2));
});
