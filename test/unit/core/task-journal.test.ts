import test, { type ExecutionContext } from "ava";
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CreateTaskRequest } from "../../../contracts/gen/llama_orch/v1/task.js";
import { Priority } from "../../../contracts/gen/llama_orch/v1/common.js";
import { decodeLine, encodeLine, replay } from "../../../core/journal/journal-records.js";
import { TaskJournal, type JournaledTask, type JournalOptions } from "../../../core/journal/task-journal.js";
import { quietLogger } from "../../support/log-capture.js";

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "llorch-journal-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function task(n: number, pool = "p"): JournaledTask {
  const id = `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
  const request = CreateTaskRequest.fromPartial({
    taskId: id,
    sessionId: id,
    prompt: `prompt ${n} ü`,
    maxTokens: n,
    priority: Priority.PRIORITY_BATCH,
  });
  // Odd tasks were submitted with a key: its identity owns them.
  return { id, poolId: pool, correlationId: `c${n}`, admittedAt: 1_000 + n, request, owner: n % 2 ? `key:k${n}` : undefined };
}

const open = (dir: string, options: Partial<JournalOptions> = {}) => TaskJournal.open(dir, quietLogger, options);

test("unfinished tasks come back in admission order, with their request, pool, owner and where they ran; finished ones do not", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await open(dir);
  for (const n of [1, 2, 3, 4, 5]) await journal.admitted(task(n));
  journal.dispatched(task(2).id, "r1");
  journal.dispatched(task(3).id, "r1");
  journal.requeued(task(3).id);
  journal.moved(task(4).id, "elsewhere");
  journal.finished(task(5).id);
  await journal.close();

  const { journal: again, recovery } = await open(dir);
  t.teardown(() => again.close());
  t.deepEqual(
    recovery.tasks.map((r) => [r.request.taskId, r.poolId, r.dispatchedTo, r.correlationId, r.admittedAt, r.owner]),
    [
      [task(1).id, "p", undefined, "c1", 1_001, "key:k1"],
      [task(2).id, "p", "r1", "c2", 1_002, undefined],
      [task(3).id, "p", undefined, "c3", 1_003, "key:k3"],
      [task(4).id, "elsewhere", undefined, "c4", 1_004, undefined],
    ],
  );
  t.deepEqual(recovery.tasks[0]!.request, task(1).request);
});

test("every start is a new epoch, written before the journal is used", async (t) => {
  const dir = await tempDir(t);
  const epochs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { journal, recovery } = await open(dir);
    epochs.push(recovery.epoch);
    await journal.close();
  }
  t.deepEqual(epochs, [1, 2, 3]);
  t.deepEqual(replay(await readFile(path.join(dir, "tasks.journal"), "utf8")).epoch, 3);
});

test("an admission resolves once its line is on disk", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await open(dir);
  t.teardown(() => journal.close());
  await journal.admitted(task(7));
  const text = await readFile(path.join(dir, "tasks.journal"), "utf8");
  t.true(replay(text).live.has(task(7).id));
});

test("a torn last line is ignored, and the file is rewritten without it", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await open(dir);
  await journal.admitted(task(1));
  await journal.close();
  const file = path.join(dir, "tasks.journal");
  // A crash in the middle of a write: half a line, no newline.
  await appendFile(file, encodeLine({ k: "finish", id: task(1).id, at: 1 }).slice(0, 20));
  const { journal: again, recovery } = await open(dir);
  t.teardown(() => again.close());
  t.deepEqual(
    recovery.tasks.map((r) => r.request.taskId),
    [task(1).id],
  );
  const lines = (await readFile(file, "utf8")).split("\n").filter(Boolean);
  t.true(lines.every((l) => decodeLine(l) !== undefined));
});

test("a line whose checksum does not match ends the replay there", (t) => {
  const good = encodeLine({ k: "finish", id: "a", at: 1 });
  const bad = good.replace('"a"', '"b"');
  t.is(decodeLine(bad.trimEnd()), undefined);
  const text = encodeLine({ k: "epoch", epoch: 4 }) + bad + encodeLine({ k: "epoch", epoch: 9 });
  t.deepEqual(replay(text).epoch, 4);
  t.is(replay(text).ignoredLines, 2);
});

test("finished tasks are compacted away: the file stays about the size of what is live", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await open(dir, { minGarbageBytes: 1, keepFinishedMs: 0 });
  t.teardown(() => journal.close());
  await journal.admitted(task(0));
  for (let n = 1; n <= 300; n++) {
    const done = journal.admitted(task(n));
    journal.dispatched(task(n).id, "r");
    journal.finished(task(n).id);
    await done;
  }
  await journal.admitted(task(999));
  const file = path.join(dir, "tasks.journal");
  const size = (await stat(file)).size;
  const lineSize = encodeLine({ k: "admit", id: task(1).id, pool: "p", cid: "c1", at: 1, req: "x".repeat(80) }).length;
  t.true(size < 12 * lineSize, `journal is ${size} bytes`);
  const unfinished = [...replay(await readFile(file, "utf8")).live].filter(([, x]) => x.finishedAt === undefined).map(([id]) => id);
  t.deepEqual(unfinished, [task(0).id, task(999).id]);
});

test("many admissions at once share writes and all resolve", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await open(dir);
  await Promise.all(Array.from({ length: 200 }, (_, n) => journal.admitted(task(n))));
  await journal.close();
  const { journal: again, recovery } = await open(dir);
  t.teardown(() => again.close());
  t.is(recovery.tasks.length, 200);
  t.deepEqual(
    recovery.tasks.map((r) => r.request.maxTokens),
    Array.from({ length: 200 }, (_, n) => n),
  );
});

test("a task that ended on a replica is kept for a core restarted just then, but not after a clean stop, nor once it is old", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await open(dir);
  await journal.admitted(task(1));
  journal.dispatched(task(1).id, "r1");
  journal.finished(task(1).id);
  await journal.admitted(task(2));
  journal.finished(task(2).id);
  await journal.admitted(task(3));
  // No close: core was killed. (This process's own lock counts as a dead core's.) Its handle writes to a file replaced since.
  t.teardown(() => journal.close());
  const crashed = await open(dir);
  t.deepEqual(
    crashed.recovery.tasks.map((r) => [r.request.taskId, r.dispatchedTo]),
    [
      [task(1).id, "r1"],
      [task(3).id, undefined],
    ],
    "the one that ended on its replica may not have reached its client; the one that ended queued did",
  );
  await crashed.journal.close();
  const clean = await open(dir);
  t.deepEqual(
    clean.recovery.tasks.map((r) => r.request.taskId),
    [task(3).id],
    "after a clean stop every client was told",
  );
  await clean.journal.close();

  const file = path.join(dir, "tasks.journal");
  const req = (n: number) => Buffer.from(CreateTaskRequest.encode(task(n).request).finish()).toString("base64");
  const admit = (n: number, at: number) => encodeLine({ k: "admit", id: task(n).id, pool: "p", cid: "", at, req: req(n) });
  await writeFile(
    file,
    encodeLine({ k: "epoch", epoch: 9 }) +
      admit(4, 1_000) +
      encodeLine({ k: "dispatch", id: task(4).id, replica: "r" }) +
      encodeLine({ k: "finish", id: task(4).id, at: 1_000 }) +
      admit(5, 60_000),
  );
  const later = await open(dir);
  t.teardown(() => later.journal.close());
  t.deepEqual(
    later.recovery.tasks.map((r) => r.request.taskId),
    [task(5).id],
    "a minute before the last record it surely reached its client",
  );
});

test("a journal directory belongs to one core at a time", async (t) => {
  const dir = await tempDir(t);
  const { journal } = await open(dir);
  const lock = path.join(dir, "tasks.journal.lock");
  t.is((await readFile(lock, "utf8")).trim(), String(process.pid));
  await journal.close();
  await t.throwsAsync(stat(lock), undefined, "a clean stop lets the directory go");
  // A live process other than this one holds it (the parent stands in for another core).
  await writeFile(lock, String(process.ppid));
  const err = await t.throwsAsync(open(dir));
  t.regex(err.message, new RegExp(`in use by process ${process.ppid}`));
  // A dead owner's lock (its core was killed) is taken over.
  await writeFile(lock, "999999999");
  const { journal: taken } = await open(dir);
  await taken.close();
});
