import test, { type ExecutionContext } from "ava";
import fc from "fast-check";
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Artifact, ArtifactKind } from "../../../contracts/gen/llama_orch/v1/artifact.js";
import { encodeDocument, idOf } from "../../../core/artifacts/artifact-document.js";
import { ArtifactStore } from "../../../core/artifacts/artifact-store.js";
import { SegmentLog } from "../../../core/artifacts/segment-log.js";
import { transcriptCanonical, type TranscriptFields } from "../../../core/artifacts/transcript-json.js";

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "llorch-segments-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const idFor = (n: number) => idOf(`record ${n}`);
const textFor = (n: number) => `{"n":${n},"text":"ü ${"x".repeat(n % 50)}"}`;

test("appends made together share one write and fsync, and all read back, before and after reopening", async (t) => {
  const dir = await tempDir(t);
  const log = await SegmentLog.open(dir);
  await Promise.all(Array.from({ length: 200 }, (_, n) => log.append(idFor(n), textFor(n), 1_000 + n)));
  t.true(log.batchesWritten <= 2, `200 appends in ${log.batchesWritten} batches`);
  t.deepEqual(await log.read(idFor(7)), { text: textFor(7), createdMs: 1_007 });
  await log.close();

  const again = await SegmentLog.open(dir);
  t.teardown(() => again.close());
  for (const n of [0, 99, 199]) t.deepEqual(await again.read(idFor(n)), { text: textFor(n), createdMs: 1_000 + n });
  t.is(await again.read(idOf("never")), undefined);
  t.deepEqual(await readdir(dir), ["00000001.seg"]);
});

test("a record is readable from the moment it is appended, before its batch is on disk", async (t) => {
  const log = await SegmentLog.open(await tempDir(t));
  t.teardown(() => log.close());
  const written = log.append(idFor(1), textFor(1), 5);
  t.deepEqual(await log.read(idFor(1)), { text: textFor(1), createdMs: 5 });
  await written;
  t.deepEqual(await log.read(idFor(1)), { text: textFor(1), createdMs: 5 });
});

test("a torn tail is cut off when the log opens; what came before stays, and appends go on after it", async (t) => {
  const dir = await tempDir(t);
  const log = await SegmentLog.open(dir);
  for (const n of [1, 2]) await log.append(idFor(n), textFor(n));
  await log.close();
  const file = path.join(dir, "00000001.seg");
  const whole = (await stat(file)).size;
  // A crash halfway through the third record's bytes.
  await appendFile(file, `${idFor(3)} 1 100 00000000\n{"half":`);

  const again = await SegmentLog.open(dir);
  t.is((await stat(file)).size, whole, "the torn record is gone");
  t.is(await again.read(idFor(3)), undefined);
  await again.append(idFor(4), textFor(4));
  await again.close();
  const third = await SegmentLog.open(dir);
  t.teardown(() => third.close());
  for (const n of [1, 2, 4]) t.is((await third.read(idFor(n)))?.text, textFor(n));
});

test("a whole record whose bytes changed is passed over, and the records after it are kept", async (t) => {
  const dir = await tempDir(t);
  const log = await SegmentLog.open(dir);
  for (const n of [1, 2, 3]) await log.append(idFor(n), textFor(n));
  await log.close();
  const file = path.join(dir, "00000001.seg");
  const text = await readFile(file, "latin1");
  const at = text.indexOf(`"n":2`);
  await writeFile(file, `${text.slice(0, at)}"n":9${text.slice(at + 5)}`, "latin1");

  const again = await SegmentLog.open(dir);
  t.teardown(() => again.close());
  t.is(await again.read(idFor(2)), undefined);
  t.is((await again.read(idFor(1)))?.text, textFor(1));
  t.is((await again.read(idFor(3)))?.text, textFor(3));
});

test("older segments are indexed from their headers; a damaged record there is caught when it is read, as a corrupt artifact", async (t) => {
  const dir = await tempDir(t);
  const store = await ArtifactStore.open(dir, { transcripts: { maxSegmentBytes: 1 } });
  const taskIds = [crypto.randomUUID(), crypto.randomUUID()];
  const fieldsOf = (taskId: string) => ({
    taskId,
    sessionId: "s",
    sse: "x",
    poolId: "p",
    replicaId: "r",
    correlationId: "c",
    tokensOut: 1,
  });
  const ids: string[] = [];
  for (const taskId of taskIds) {
    const canonical = transcriptCanonical(fieldsOf(taskId));
    ids.push(idOf(canonical));
    await store.putTranscript(idOf(canonical), canonical);
  }
  await store.close();
  const first = path.join(dir, "transcripts", "00000001.seg");
  const text = await readFile(first, "latin1");
  await writeFile(first, text.replace(`"tokens_out":1`, `"tokens_out":7`), "latin1");

  const again = await ArtifactStore.open(dir);
  t.teardown(() => again.close());
  await t.throwsAsync(() => again.get(ids[0]!), { message: /corrupt on disk: content does not hash to its id/ });
  t.like(await again.get(ids[1]!), { id: ids[1] });
});

test("full segments are closed for new ones, and a whole segment goes once its newest record is past the retention", async (t) => {
  const dir = await tempDir(t);
  let now = 1_000_000;
  const log = await SegmentLog.open(dir, { maxSegmentBytes: 300, retentionMs: 10_000, clock: () => now });
  t.teardown(() => log.close());
  for (let n = 0; n < 12; n++) await log.append(idFor(n), textFor(n), now + n);
  const segments = (await readdir(dir)).sort();
  t.true(segments.length >= 3, `12 records over ${segments.length} segments`);

  now += 5_000;
  t.is(await log.compact(), 0, "nothing is old enough yet");
  now += 10_000;
  const removed = await log.compact();
  t.is(removed, segments.length - 1, "every segment but the one being written");
  t.deepEqual(await readdir(dir), [segments.at(-1)]);
  t.is(await log.read(idFor(0)), undefined);
  t.is((await log.read(idFor(11)))?.text, textFor(11), "the segment being written stays");
});

const fields = fc.record<TranscriptFields>({
  taskId: fc.uuid(),
  sessionId: fc.string({ unit: "grapheme" }),
  sse: fc.string({ unit: "binary" }),
  poolId: fc.string(),
  replicaId: fc.string(),
  correlationId: fc.string({ unit: "grapheme-ascii" }),
  tokensOut: fc.nat(),
});

test("a transcript's canonical JSON is byte for byte what encodeDocument gives the same trace artifact", (t) => {
  fc.assert(
    fc.property(fields, (f) => {
      const doc = Artifact.fromPartial({
        kind: ArtifactKind.ARTIFACT_KIND_TRACE,
        content: { task_id: f.taskId, session_id: f.sessionId, format: "text/event-stream", sse: f.sse },
        tags: ["transcript", `task:${f.taskId}`],
        metadata: { pool_id: f.poolId, replica_id: f.replicaId, correlation_id: f.correlationId, tokens_out: f.tokensOut },
      });
      return transcriptCanonical(f) === encodeDocument(doc);
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test("the artifact store serves a transcript from the log by its id, as a trace artifact, and after reopening", async (t) => {
  const dir = await tempDir(t);
  const store = await ArtifactStore.open(dir, { clock: () => 42 });
  const taskId = crypto.randomUUID();
  const canonical = transcriptCanonical({
    taskId,
    sessionId: "s",
    sse: "id: 1\nevent: token\ndata: {}\n\n",
    poolId: "p",
    replicaId: "r",
    correlationId: "c",
    tokensOut: 1,
  });
  const id = idOf(canonical);
  await store.putTranscript(id, canonical);
  await store.close();
  const again = await ArtifactStore.open(dir);
  t.teardown(() => again.close());
  const artifact = await again.get(id);
  t.like(artifact, {
    id,
    digest: `sha256:${id}`,
    kind: ArtifactKind.ARTIFACT_KIND_TRACE,
    createdMs: 42,
    tags: ["transcript", `task:${taskId}`],
  });
  t.is((artifact?.content as Record<string, unknown>)["task_id"], taskId);
  t.false(
    (await readdir(dir)).some((name) => /^[0-9a-f]{2}$/.test(name)),
    "no file per transcript",
  );
});
