import test from "ava";
import fc from "fast-check";
import { StopReason } from "../../../contracts/gen/llama_orch/v1/common.js";
import { TaskEventLog, withoutLeadingTokens } from "../../../core/tasks/task-event-log.js";

const end = {
  $case: "end" as const,
  end: { tokensOut: 0, decodeTimeMs: 0, tokensIn: 0, stopReason: StopReason.STOP_REASON_MAX_TOKENS, traceArtifactId: "" },
};

function logWith(batches: string[][]): TaskEventLog {
  const log = new TaskEventLog();
  log.append({ $case: "started", started: { queuePosition: 0, predictedStartMs: 0 } });
  let i = 0;
  for (const texts of batches) {
    log.append({ $case: "tokens", tokens: { firstIndex: i, texts } });
    i += texts.length;
  }
  return log;
}

test("sequence numbers count frames: a batch of n tokens spans n numbers", (t) => {
  const log = logWith([["a", "b", "c"], ["d"]]);
  log.append(end);
  t.deepEqual(
    log.events.map((e) => e.seq),
    [1, 2, 5, 6],
  );
  t.is(log.lastSeq, 6);
});

test("nothing can be appended after end or error: no token after a cancel", (t) => {
  const log = logWith([["a"]]);
  t.true(log.append(end));
  t.false(log.append({ $case: "tokens", tokens: { firstIndex: 1, texts: ["late"] } }));
  t.false(log.append({ $case: "error", error: { code: 8, message: "x", engine: 0, retriable: false, traceArtifactId: "" } }));
  t.true(log.isClosed);
  t.is(log.events.at(-1)!.kind!.$case, "end");
});

test("subscribers hear every append", (t) => {
  const log = new TaskEventLog();
  let calls = 0;
  const off = log.subscribe(() => calls++);
  log.append({ $case: "started", started: { queuePosition: 0, predictedStartMs: 0 } });
  off();
  log.append(end);
  t.is(calls, 1);
});

test("property: resuming after any seq yields exactly the frames after it, no duplicates, no gaps", (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.string({ maxLength: 3 }), { minLength: 1, maxLength: 5 }), { maxLength: 12 }),
      fc.nat(80),
      (batches, after) => {
        const log = logWith(batches);
        log.append(end);
        const frames = (events: typeof log.events) =>
          events.flatMap((e) =>
            e.kind?.$case === "tokens" ? e.kind.tokens.texts.map((x, k) => `${e.seq + k}:${x}`) : [`${e.seq}:${e.kind?.$case}`],
          );
        const all = frames(log.events);
        const { index, skipTokens } = log.resumePoint(after);
        const rest = log.events.slice(index);
        if (rest.length) rest[0] = withoutLeadingTokens(rest[0]!, skipTokens);
        const expected = all.filter((f) => Number(f.split(":")[0]) > after);
        return JSON.stringify(frames(rest)) === JSON.stringify(expected);
      },
    ),
  );
  t.pass();
});
