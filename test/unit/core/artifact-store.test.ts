import test from "ava";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { canonicalJson } from "../../../core/artifacts/canonical-json.js";
import { ArtifactStore, type ArtifactInput } from "../../support/artifact-json.js";
import { openStore, refused } from "./artifact-store-harness.js";

// ---------- ids ----------

test("the same content gives the same id; the id is the sha256 of the canonical document", async (t) => {
  const { store } = await openStore(t);
  const input: ArtifactInput = { kind: "summary", content: { text: "All checks passed." } };
  const { artifact } = await store.put(input);
  t.regex(artifact.id, /^[0-9a-f]{64}$/);
  t.is(artifact.digest, `sha256:${artifact.id}`);
  const { createHash } = await import("node:crypto");
  const expected = createHash("sha256")
    .update(canonicalJson({ kind: "summary", content: input.content }))
    .digest("hex");
  t.is(artifact.id, expected);
  t.is((await store.put({ kind: "summary", content: { text: "All checks passed." } })).artifact.id, artifact.id);
});

test("different key order gives the same id; any change in content, kind, tags, parent or metadata gives a new one", async (t) => {
  const { store } = await openStore(t);
  const a = await store.put({ kind: "plan", content: { steps: [1, 2], owner: { name: "x", id: 7 } }, metadata: { b: 1, a: 2 } });
  const b = await store.put({ metadata: { a: 2, b: 1 }, content: { owner: { id: 7, name: "x" }, steps: [1, 2] }, kind: "plan" });
  t.is(b.artifact.id, a.artifact.id);
  t.false(b.created);

  const variants: ArtifactInput[] = [
    { kind: "plan", content: { steps: [2, 1], owner: { name: "x", id: 7 } }, metadata: { b: 1, a: 2 } },
    { kind: "diff", content: { steps: [1, 2], owner: { name: "x", id: 7 } }, metadata: { b: 1, a: 2 } },
    { kind: "plan", content: { steps: [1, 2], owner: { name: "x", id: 7 } } },
    { kind: "plan", content: { steps: [1, 2], owner: { name: "x", id: 7 } }, metadata: { b: 1, a: 2 }, tags: [] },
    { kind: "plan", content: { steps: [1, 2], owner: { name: "x", id: 7 } }, metadata: { b: 1, a: 2 }, parent: a.artifact.id },
  ];
  const ids = new Set([a.artifact.id]);
  for (const v of variants) ids.add((await store.put(v)).artifact.id);
  t.is(ids.size, variants.length + 1);
});

test("undefined optional members are the same as absent ones", async (t) => {
  const { store } = await openStore(t);
  const a = await store.put({ kind: "other", content: { x: 1, y: undefined } });
  const b = await store.put({ kind: "other", content: { x: 1 }, tags: undefined, parent: undefined, metadata: undefined });
  t.is(b.artifact.id, a.artifact.id);
  t.false("tags" in b.artifact || "parent" in b.artifact || "metadata" in b.artifact);
});

test("put reports created, and a repeat keeps the original created_ms", async (t) => {
  const { store, advance } = await openStore(t);
  const first = await store.put({ kind: "trace", content: { spans: [] }, tags: ["t1"] });
  t.true(first.created);
  t.is(first.artifact.created_ms, 1_000);
  advance(5_000);
  const again = await store.put({ kind: "trace", content: { spans: [] }, tags: ["t1"] });
  t.false(again.created);
  t.deepEqual(again.artifact, first.artifact);
  t.is(again.artifact.created_ms, 1_000);
  t.deepEqual(await store.get(first.artifact.id), first.artifact);
});

test("stored artifacts are copies: mutating the input or a result does not change the store", async (t) => {
  const { store } = await openStore(t);
  const content = { list: [1, 2] };
  const { artifact } = await store.put({ kind: "other", content });
  content.list.push(3);
  (artifact.content.list as number[]).push(4);
  t.deepEqual((await store.get(artifact.id))!.content, { list: [1, 2] });
});

test("concurrent puts of the same content both succeed and agree", async (t) => {
  const { store, root } = await openStore(t);
  const input: ArtifactInput = { kind: "summary", content: { text: "race" } };
  const results = await Promise.all(Array.from({ length: 8 }, () => store.put(input)));
  t.is(results.filter((r) => r.created).length, 1);
  for (const r of results) t.deepEqual(r.artifact, results[0]!.artifact);

  // A second store instance on the same root (as another process would be) agrees too.
  const other = await ArtifactStore.open(root, { clock: () => 99_999 });
  const input2: ArtifactInput = { kind: "summary", content: { text: "race 2" } };
  const [x, y] = await Promise.all([store.put(input2), other.put(input2)]);
  t.deepEqual(x.artifact, y.artifact);
  t.is([x.created, y.created].filter(Boolean).length, 1);
  t.deepEqual(await store.get(x.artifact.id), x.artifact);
});

// ---------- lineage and parents ----------

test("lineage runs parent first to the root across three generations", async (t) => {
  const { store } = await openStore(t);
  const root = (await store.put({ kind: "plan", content: { v: 1 } })).artifact;
  const child = (await store.put({ kind: "diff", content: { v: 2 }, parent: root.id })).artifact;
  const grandchild = (await store.put({ kind: "summary", content: { v: 3 }, parent: child.id })).artifact;
  t.deepEqual(root.lineage, []);
  t.deepEqual(child.lineage, [root.id]);
  t.deepEqual(grandchild.lineage, [child.id, root.id]);
  t.is(grandchild.parent, child.id);
  t.deepEqual((await store.get(grandchild.id))!.lineage, [child.id, root.id]);
});

test("lineage is computed on read, not stored in the file", async (t) => {
  const { store, root } = await openStore(t);
  const parent = (await store.put({ kind: "plan", content: { v: 1 } })).artifact;
  const child = (await store.put({ kind: "diff", content: { v: 2 }, parent: parent.id })).artifact;
  const onDisk = JSON.parse(await readFile(path.join(root, child.id.slice(0, 2), `${child.id}.json`), "utf8"));
  t.false("lineage" in onDisk);
  t.is(onDisk.parent, parent.id);
});

test("an unknown or malformed parent is refused", async (t) => {
  const { store } = await openStore(t);
  const missing = "a".repeat(64);
  const err = await refused(t, store.put({ kind: "plan", content: {}, parent: missing }), "invalid", "/parent");
  t.is(err.message, `unknown parent artifact ${missing}`);
  await refused(t, store.put({ kind: "plan", content: {}, parent: "../../etc/passwd" }), "invalid", "/parent");
  await refused(t, store.put({ kind: "plan", content: {}, parent: "A".repeat(64) }), "invalid", "/parent");
});
