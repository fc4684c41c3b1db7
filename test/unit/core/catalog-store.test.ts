import test from "ava";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { CatalogError, CatalogStore } from "../../support/catalog-json.js";
import { DIGEST, fakeClock, sha, tempDir } from "./catalog-harness.js";

// --- CRUD and validation -------------------------------------------------------------------

test("create, get, list and delete", async (t) => {
  const store = await CatalogStore.open(await tempDir(t), fakeClock(5_000));
  const created = await store.create({
    id: "tiny-chat",
    digest: "sha256:01ab23cd45ef",
    source_url: "hf:TinyOrg/tiny-chat-GGUF/tiny-chat.q4_0.gguf",
    tags: ["chat"],
    manifests: [{ digest: "sha256:01ab23cd45ef", size_bytes: 637000000 }],
    signatures: [{ signer: "TinyOrg", algo: "cosign", verified: true, timestamp_ms: 1716000000000 }],
    sbom: { uri: "https://sbom.example.org/tiny-chat.cdx.json", digest: "sha256:77aa88bb" },
    trust_policy: { mode: "strict", require_signature: true },
  });
  t.is(created.state, "Active");
  t.is(created.created_ms, 5_000);
  t.is(created.state_changed_ms, 5_000);
  t.deepEqual(store.get("tiny-chat"), created);
  t.deepEqual(store.list(), [created]);
  t.is(store.get("nope"), undefined);

  t.true(await store.delete("tiny-chat"));
  t.is(store.get("tiny-chat"), undefined);
  t.false(await store.delete("tiny-chat"));
  t.false(await store.delete("../etc"));
  t.deepEqual(store.list(), []);
});

test("returned entries are copies: mutating them does not change the catalog", async (t) => {
  const store = await CatalogStore.open(await tempDir(t));
  const e = await store.create({ id: "m", digest: DIGEST, tags: ["a"] });
  e.tags!.push("b");
  store.get("m")!.tags!.push("c");
  t.deepEqual(store.get("m")!.tags, ["a"]);
});

test("list is sorted by id", async (t) => {
  const store = await CatalogStore.open(await tempDir(t));
  for (const id of ["b", "c", "a"]) await store.create({ id, digest: DIGEST });
  t.deepEqual(
    store.list().map((e) => e.id),
    ["a", "b", "c"],
  );
});

test("creating an existing id is a conflict", async (t) => {
  const store = await CatalogStore.open(await tempDir(t));
  await store.create({ id: "m", digest: DIGEST });
  const err = await t.throwsAsync(store.create({ id: "m", digest: DIGEST }), { instanceOf: CatalogError });
  t.is(err.kind, "conflict");
});

for (const id of ["../x", "a/b", "", "x".repeat(200), ".hidden", "..", "a..b", "-lead", "sp ace", "nul\0", "back\\slash"]) {
  test(`rejects id ${JSON.stringify(id.length > 20 ? `${id.slice(0, 5)}…(${id.length})` : id)}`, async (t) => {
    const store = await CatalogStore.open(await tempDir(t));
    const err = await t.throwsAsync(store.create({ id, digest: DIGEST }), { instanceOf: CatalogError });
    t.is(err.kind, "invalid");
    t.is(err.field, "/id");
    t.throws(() => store.modelDir(id), { instanceOf: CatalogError });
  });
}

test("accepts ids up to 128 characters with dots, colons, underscores and dashes", async (t) => {
  const store = await CatalogStore.open(await tempDir(t));
  for (const id of ["a", "llama-3.1_8b:q4", "x".repeat(128)]) {
    t.is((await store.create({ id, digest: DIGEST })).id, id);
  }
});

for (const digest of [
  "",
  "deadbeef",
  "sha256:",
  "sha256:xyz12345",
  "sha256:DEADBEEF",
  "sha256:dead",
  "SHA256:deadbeef",
  `sha256:${"a".repeat(129)}`,
  " sha256:deadbeef",
]) {
  test(`rejects digest ${JSON.stringify(digest.slice(0, 24))}`, async (t) => {
    const store = await CatalogStore.open(await tempDir(t));
    const err = await t.throwsAsync(store.create({ id: "m", digest }), { instanceOf: CatalogError });
    t.is(err.kind, "invalid");
    t.is(err.field, "/digest");
  });
}

test("accepts full and short digests of any algorithm", async (t) => {
  const store = await CatalogStore.open(await tempDir(t));
  for (const [i, digest] of [`sha256:${sha("x")}`, "sha256:deadbeef", "sha512:0123456789abcdef", "blake3:00ff00ff"].entries()) {
    t.is((await store.create({ id: `m${i}`, digest })).digest, digest);
  }
});

test("validates source_url and nested fields", async (t) => {
  const store = await CatalogStore.open(await tempDir(t));
  const cases: [Record<string, unknown>, string][] = [
    [{ source_url: "http://example.org/x" }, "/source_url"],
    [{ source_url: "mock:tiny" }, "/source_url"],
    [{ tags: ["ok", 3] }, "/tags"],
    [{ manifests: [{ size_bytes: -1 }] }, "/manifests/0/size_bytes"],
    [{ signatures: [{ verified: "yes" }] }, "/signatures/0/verified"],
    [{ sbom: "uri" }, "/sbom"],
    [{ trust_policy: { mode: "lenient" } }, "/trust_policy/mode"],
  ];
  for (const [extra, field] of cases) {
    const err = await t.throwsAsync(store.create({ id: "m", digest: DIGEST, ...extra }), { instanceOf: CatalogError });
    t.is(err.field, field, JSON.stringify(extra));
  }
  t.deepEqual(store.list(), []);
});

test("unknown input fields are not stored; state fields cannot be injected", async (t) => {
  const store = await CatalogStore.open(await tempDir(t), fakeClock(7));
  const e = await store.create({ id: "m", digest: DIGEST, state: "Retired", created_ms: 1, extra: 1 });
  t.is(e.state, "Active");
  t.is(e.created_ms, 7);
  t.false("extra" in e);
});

// --- lifecycle -----------------------------------------------------------------------------

test("setState Retired with a deadline stores an absolute deadline; Active clears it", async (t) => {
  const clock = fakeClock(10_000);
  const store = await CatalogStore.open(await tempDir(t), clock);
  await store.create({ id: "m", digest: DIGEST });
  clock.advance(500);
  const retired = await store.setState("m", "Retired", 300_000);
  t.is(retired.state, "Retired");
  t.is(retired.state_changed_ms, 10_500);
  t.is(retired.retire_deadline_ms, 310_500);
  t.deepEqual(store.get("m"), retired);

  clock.advance(100);
  const again = await store.setState("m", "Retired");
  t.is(again.state_changed_ms, 10_500, "same state keeps its change time");
  t.is(again.retire_deadline_ms, undefined);

  const active = await store.setState("m", "Active", 5);
  t.is(active.state, "Active");
  t.is(active.state_changed_ms, 10_600);
  t.is(active.retire_deadline_ms, undefined);
});

test("setState rejects unknown ids, states and bad deadlines", async (t) => {
  const store = await CatalogStore.open(await tempDir(t));
  await store.create({ id: "m", digest: DIGEST });
  t.is((await t.throwsAsync(store.setState("x", "Retired"), { instanceOf: CatalogError })).kind, "not_found");
  t.is((await t.throwsAsync(store.setState("m", "Gone"), { instanceOf: CatalogError })).field, "/state");
  t.is((await t.throwsAsync(store.setState("m", "Retired", -1), { instanceOf: CatalogError })).field, "/deadline_ms");
  t.is((await t.throwsAsync(store.setState("m", "Retired", 1.5), { instanceOf: CatalogError })).field, "/deadline_ms");
  t.is(store.get("m")!.state, "Active");
});

test("recordVerification stores the outcome; unknown id is not_found", async (t) => {
  const store = await CatalogStore.open(await tempDir(t));
  await store.create({ id: "m", digest: DIGEST });
  const v = { status: "passed" as const, checked_ms: 42, warnings: ["no SBOM recorded"], computed_digest: DIGEST };
  t.deepEqual((await store.recordVerification("m", v)).verification, v);
  t.is((await t.throwsAsync(store.recordVerification("x", v), { instanceOf: CatalogError })).kind, "not_found");
  t.is((await t.throwsAsync(store.recordVerification("m", { ...v, status: "ok" as never }), { instanceOf: CatalogError })).kind, "invalid");
});

test("delete removes the model's cache directory and nothing else", async (t) => {
  const root = await tempDir(t);
  const store = await CatalogStore.open(root);
  await store.create({ id: "a", digest: DIGEST });
  await store.create({ id: "b", digest: DIGEST });
  t.is(store.modelDir("a"), path.join(root, "models", "a"));
  for (const id of ["a", "b"]) {
    await mkdir(path.join(store.modelDir(id), "sub"), { recursive: true });
    await writeFile(path.join(store.modelDir(id), "model"), "weights");
  }
  t.true(await store.delete("a"));
  await t.throwsAsync(stat(store.modelDir("a")), { code: "ENOENT" });
  t.is(await readFile(path.join(store.modelDir("b"), "model"), "utf8"), "weights");
});
