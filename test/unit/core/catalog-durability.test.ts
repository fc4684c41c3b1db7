import test from "ava";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { tempPathFor } from "../../../contracts/runtime/atomic-file.js";
import { CATALOG_SCHEMA_VERSION, CatalogStore, type CatalogError } from "../../support/catalog-json.js";
import { DIGEST, fakeClock, tempDir } from "./catalog-harness.js";

test("entries survive a restart and the index has the documented shape", async (t) => {
  const root = await tempDir(t);
  const first = await CatalogStore.open(root, fakeClock(1));
  await first.create({ id: "a", digest: DIGEST, source_url: "file:/models/a.gguf", tags: ["x"] });
  await first.create({ id: "b", digest: "sha256:deadbeef" });
  await first.setState("b", "Retired", 10);
  await first.recordVerification("a", { status: "failed", checked_ms: 2, warnings: [], error: "boom" });

  const second = await CatalogStore.open(root);
  t.deepEqual(second.list(), first.list());
  const doc = JSON.parse(await readFile(path.join(root, "index.json"), "utf8"));
  t.is(doc.schema_version, CATALOG_SCHEMA_VERSION);
  t.deepEqual(Object.keys(doc.models), ["a", "b"]);
  t.is(doc.models.b.retire_deadline_ms, 11);
});

test("a deleted entry stays deleted after a restart", async (t) => {
  const root = await tempDir(t);
  const first = await CatalogStore.open(root);
  await first.create({ id: "a", digest: DIGEST });
  await first.delete("a");
  t.deepEqual((await CatalogStore.open(root)).list(), []);
});

test("an unknown schema_version refuses to open and the file is left untouched", async (t) => {
  const root = await tempDir(t);
  const text = JSON.stringify({ schema_version: 2, models: {} });
  await writeFile(path.join(root, "index.json"), text);
  const err = await t.throwsAsync(CatalogStore.open(root));
  t.regex(err.message, /schema_version 2/);
  t.is(await readFile(path.join(root, "index.json"), "utf8"), text);
});

test("a missing schema_version, broken JSON or a malformed entry refuses to open", async (t) => {
  const root = await tempDir(t);
  const bad = [
    [JSON.stringify({ models: {} }), /schema_version/],
    ['{"schema_version": 1, "mod', /not valid JSON/],
    [
      JSON.stringify({
        schema_version: 1,
        models: { a: { id: "b", digest: DIGEST, state: "Active", created_ms: 1, state_changed_ms: 1 } },
      }),
      /entry "a"/,
    ],
    [
      JSON.stringify({
        schema_version: 1,
        models: { a: { id: "a", digest: DIGEST, state: "Zombie", created_ms: 1, state_changed_ms: 1 } },
      }),
      /state/,
    ],
  ] as const;
  for (const [text, why] of bad) {
    await writeFile(path.join(root, "index.json"), text);
    t.regex((await t.throwsAsync(CatalogStore.open(root))).message, why);
  }
});

test("a torn temp file from a crashed write is ignored and removed; the index still loads", async (t) => {
  const root = await tempDir(t);
  const first = await CatalogStore.open(root);
  await first.create({ id: "a", digest: DIGEST });
  const torn = tempPathFor(path.join(root, "index.json"));
  await writeFile(torn, '{"schema_version": 1, "models": {"a": {"id"');

  const second = await CatalogStore.open(root);
  t.deepEqual(
    second.list().map((e) => e.id),
    ["a"],
  );
  await t.throwsAsync(stat(torn), { code: "ENOENT" });
  await second.create({ id: "b", digest: DIGEST });
  t.deepEqual(
    (await CatalogStore.open(root)).list().map((e) => e.id),
    ["a", "b"],
  );
});

test("a crash before the first index write leaves an empty, openable catalog", async (t) => {
  const root = await tempDir(t);
  await writeFile(tempPathFor(path.join(root, "index.json")), '{"sch');
  t.deepEqual((await CatalogStore.open(root)).list(), []);
  t.deepEqual(await readdir(root), []);
});

test("open creates a missing root directory", async (t) => {
  const root = path.join(await tempDir(t), "deep", "er");
  const store = await CatalogStore.open(root);
  await store.create({ id: "a", digest: DIGEST });
  t.truthy(await stat(path.join(root, "index.json")));
});

test("20 concurrent creates all persist, and a duplicate among them conflicts exactly once", async (t) => {
  const root = await tempDir(t);
  const store = await CatalogStore.open(root);
  const ids = Array.from({ length: 20 }, (_, i) => `m${String(i).padStart(2, "0")}`);
  const results = await Promise.allSettled([...ids, "m05"].map((id) => store.create({ id, digest: DIGEST })));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  t.is(failed.length, 1);
  t.is((failed[0]!.reason as CatalogError).kind, "conflict");
  t.deepEqual(
    store.list().map((e) => e.id),
    ids,
  );
  t.deepEqual(
    (await CatalogStore.open(root)).list().map((e) => e.id),
    ids,
  );
  t.deepEqual(await readdir(root), ["index.json"]);
});

test("concurrent mixed mutations on one entry are all applied", async (t) => {
  const root = await tempDir(t);
  const store = await CatalogStore.open(root);
  await store.create({ id: "m", digest: DIGEST });
  await Promise.all([
    store.setState("m", "Retired", 100),
    store.recordVerification("m", { status: "passed", checked_ms: 1, warnings: [] }),
    store.create({ id: "n", digest: DIGEST }),
  ]);
  const reopened = await CatalogStore.open(root);
  t.is(reopened.get("m")!.state, "Retired");
  t.is(reopened.get("m")!.verification!.status, "passed");
  t.truthy(reopened.get("n"));
});

test("a failed mutation does not block the ones queued after it", async (t) => {
  const store = await CatalogStore.open(await tempDir(t));
  const [a, b] = await Promise.allSettled([store.setState("missing", "Retired"), store.create({ id: "ok", digest: DIGEST })]);
  t.is(a.status, "rejected");
  t.is(b.status, "fulfilled");
});
