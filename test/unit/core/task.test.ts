import type { ClientReadableStream } from "@grpc/grpc-js";
import { ROOT_CONTEXT } from "@opentelemetry/api";
import test from "ava";
import { CreateTaskRequest } from "../../../contracts/gen/llama_orch/v1/task.js";
import type { Replica } from "../../../core/registry/replica.js";
import { Task, type TaskAttempt } from "../../../core/tasks/task.js";
import { unstartedReplica } from "./replica-harness.js";

function task(id = "t1"): Task {
  return new Task(CreateTaskRequest.fromPartial({ taskId: id, sessionId: "s1", maxTokens: 8, ctx: 64 }), "p", "corr-1", {
    predictedDurationMs: undefined,
    span: undefined,
    traceContext: ROOT_CONTEXT,
  });
}

const replica = unstartedReplica;

/** An attempt on `r` holding one of its slots; the call is never read, only compared. */
function attemptOn(r: Replica, kvWarm = false): TaskAttempt {
  const call = { cancel() {} } as unknown as ClientReadableStream<unknown>;
  return { lease: r.claimSlot()!, replica: r, call, kvWarm };
}

test("a task runs on its attempt and gives the slot back when it finishes, keeping the replica for its reports", (t) => {
  const r = replica();
  t.teardown(() => r.close());
  const x = task();
  const attempt = attemptOn(r, true);
  x.markRunning(attempt, 1_000);
  t.is(x.state, "running");
  t.is(x.call, attempt.call);
  t.true(x.kvWarm);
  t.is(x.attempts, 1);
  t.is(x.dispatchedAt, 1_000);
  t.is(r.activeSlots, 1);
  x.finish(1_500);
  t.is(x.state, "finished");
  t.is(x.finishedAt, 1_500);
  t.is(x.call, undefined);
  t.is(x.replica, r);
  t.is(r.activeSlots, 0);
  attempt.lease.release();
  t.is(r.activeSlots, 0, "releasing the finished task's lease again frees nothing more");
});

test("an abandoned attempt frees its slot and forgets its replica; the retry keeps the first dispatch time", (t) => {
  const r = replica();
  t.teardown(() => r.close());
  const x = task();
  x.markRunning(attemptOn(r), 1_000);
  x.abandonAttempt();
  t.is(x.state, "queued");
  t.is(x.replica, undefined);
  t.is(x.call, undefined);
  t.is(r.activeSlots, 0);
  x.markRunning(attemptOn(r), 2_000);
  t.is(x.attempts, 2);
  t.is(x.dispatchedAt, 1_000);
  t.is(x.lastProgressAt, 2_000);
  t.is(r.activeSlots, 1);
  x.finish(3_000);
  t.is(r.activeSlots, 0);
});

test("the first token batch is reported as first; every batch counts and moves the idle clock", (t) => {
  const r = replica();
  t.teardown(() => r.close());
  const x = task();
  x.markRunning(attemptOn(r), 1_000);
  x.recordPromptTokens(5);
  t.true(x.recordTokens(2, 1_100));
  t.false(x.recordTokens(3, 1_200));
  t.is(x.tokensIn, 5);
  t.is(x.tokensOut, 5);
  t.is(x.firstTokenAt, 1_100);
  t.is(x.lastProgressAt, 1_200);
});

test("state changes the task's state does not allow are refused", (t) => {
  const r = replica();
  t.teardown(() => r.close());
  const x = task();
  t.throws(() => x.recordTokens(1, 1), { message: /cannot count tokens while queued/ });
  t.throws(() => x.recordPromptTokens(1), { message: /cannot count prompt tokens while queued/ });
  t.throws(() => x.abandonAttempt(), { message: /cannot abandon an attempt while queued/ });
  x.markRunning(attemptOn(r), 1);
  t.throws(() => x.markRunning(attemptOn(r), 2), { message: /cannot start running while running/ });
  t.throws(() => x.moveToPool("q"), { message: /cannot move to another pool while running/ });
  x.finish(3);
  t.throws(() => x.finish(4), { message: /cannot finish twice/ });
  t.throws(() => x.markRunning(attemptOn(r), 5), { message: /cannot start running while finished/ });
  t.is(r.activeSlots, 2, "the task released its own lease; the two refused attempts never became its to release");
});

test("a queued task may move to another pool", (t) => {
  const x = task();
  x.moveToPool("q");
  t.is(x.poolId, "q");
});

test("notePosition says whether the client hears a new position", (t) => {
  const x = task();
  t.true(x.notePosition(3));
  t.false(x.notePosition(3));
  t.true(x.notePosition(2));
  t.is(x.reportedPosition, 2);
});

test("the last reader leaving with no grace abandons the task at once; another reader still reading keeps it", (t) => {
  const x = task();
  let abandoned = 0;
  x.readerJoined();
  x.readerJoined();
  x.readerLeft(0, () => abandoned++);
  t.is(abandoned, 0);
  t.is(x.readers, 1);
  x.readerLeft(0, () => abandoned++);
  t.is(abandoned, 1);
  t.is(x.readers, 0);
});

test("a reader coming back within the grace period calls the abandonment off", async (t) => {
  const x = task();
  let abandoned = 0;
  x.readerJoined();
  x.readerLeft(30, () => abandoned++);
  x.readerJoined();
  await new Promise((r) => setTimeout(r, 60));
  t.is(abandoned, 0);
  x.readerLeft(30, () => abandoned++);
  await new Promise((r) => setTimeout(r, 60));
  t.is(abandoned, 1);
});

test("a task that finishes during the grace period is not abandoned", async (t) => {
  const x = task();
  let abandoned = 0;
  x.readerJoined();
  x.readerLeft(30, () => abandoned++);
  x.finish(1);
  await new Promise((r) => setTimeout(r, 60));
  t.is(abandoned, 0);
  x.readerLeft(0, () => abandoned++);
  t.is(abandoned, 0, "a finished task has nothing to abandon");
});
