import test from "ava";
import { readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { ArtifactStore, type ArtifactInput } from "../../support/artifact-json.js";
import { openStore, tempRoot } from "./artifact-store-harness.js";

test("artifacts survive closing and reopening the store", async (t) => {
  const root = await tempRoot(t);
  const first = await ArtifactStore.open(root, { clock: () => 111 });
  const parent = (await first.put({ kind: "plan", content: { step: "one" }, tags: ["a", "b"], metadata: { by: "me" } })).artifact;
  const child = (await first.put({ kind: "diff", content: { step: "two" }, parent: parent.id })).artifact;

  const second = await ArtifactStore.open(root, { clock: () => 222 });
  t.deepEqual(await second.get(parent.id), parent);
  t.deepEqual(await second.get(child.id), child);
  const again = await second.put({ kind: "plan", content: { step: "one" }, tags: ["a", "b"], metadata: { by: "me" } });
  t.false(again.created);
  t.is(again.artifact.created_ms, 111);
  t.deepEqual(
    await readdir(path.join(root, parent.id.slice(0, 2))),
    [`${parent.id}.json`].concat(child.id.slice(0, 2) === parent.id.slice(0, 2) ? [`${child.id}.json`] : []).sort(),
  );
});

test("a leftover temp file is ignored, and removed on open once its writer is gone", async (t) => {
  const root = await tempRoot(t);
  const store = await ArtifactStore.open(root, { clock: () => 5 });
  const input: ArtifactInput = { kind: "summary", content: { crashed: true } };
  const { artifact } = await store.put(input);
  const shard = path.join(root, artifact.id.slice(0, 2));
  const file = path.join(shard, `${artifact.id}.json`);
  const body = await readFile(file, "utf8");
  await rm(file);

  // A crash between write and rename leaves a complete-looking temp file behind.
  const deadPid = 4_194_305; // above Linux pid_max: never a live process
  const deadTemp = path.join(shard, `.${artifact.id}.json.${deadPid}.0123456789ab.tmp`);
  const oldTemp = path.join(shard, `.${artifact.id}.json.0badc0ffee.tmp`);
  const liveTemp = path.join(shard, `.${artifact.id}.json.${process.pid}.aaaaaaaaaaaa.tmp`);
  await writeFile(deadTemp, body);
  await writeFile(oldTemp, body.slice(0, 10));
  const old = new Date(Date.now() - 10 * 60_000);
  await utimes(oldTemp, old, old);
  await writeFile(liveTemp, body);

  const reopened = await ArtifactStore.open(root);
  const left = await readdir(shard);
  t.false(left.includes(path.basename(deadTemp)));
  t.false(left.includes(path.basename(oldTemp)));
  t.true(left.includes(path.basename(liveTemp)), "a temp file a live writer may still publish is kept");

  t.is(await reopened.get(artifact.id), undefined);
  const again = await reopened.put(input);
  t.true(again.created);
  t.deepEqual(await reopened.get(artifact.id), again.artifact);
});

test("a file that does not match its id is reported as corrupt, and a put of the true content repairs it", async (t) => {
  const { store, root } = await openStore(t);
  const input: ArtifactInput = { kind: "plan", content: { ok: true } };
  const { artifact } = await store.put(input);
  const file = path.join(root, artifact.id.slice(0, 2), `${artifact.id}.json`);
  await writeFile(file, JSON.stringify({ ...artifact, lineage: undefined, content: { ok: false } }));
  await t.throwsAsync(store.get(artifact.id), { message: /corrupt/ });
  const repaired = await store.put(input);
  t.true(repaired.created);
  t.deepEqual((await store.get(artifact.id))!.content, { ok: true });
});
