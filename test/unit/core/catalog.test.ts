import test, { type ExecutionContext } from "ava";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { removeStaleTempFiles, tempPathFor, writeFileAtomic } from "../../../core/storage/atomic-file.js";
import { CATALOG_SCHEMA_VERSION, CatalogError, CatalogStore, type CatalogEntry } from "../../support/catalog-json.js";
import { sha256File, verifyEntry } from "../../support/catalog-json.js";

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "llorch-catalog-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const sha = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const DIGEST = `sha256:${"0".repeat(64)}`;

function fakeClock(start = 1_000) {
  let now = start;
  const clock = () => now;
  return Object.assign(clock, { advance: (ms: number) => (now += ms) });
}

// --- atomic file ---------------------------------------------------------------------------

test("writeFileAtomic replaces the file and leaves no temp files behind", async (t) => {
  const dir = await tempDir(t);
  const target = path.join(dir, "f.json");
  await writeFileAtomic(target, "one");
  await writeFileAtomic(target, "two");
  t.is(await readFile(target, "utf8"), "two");
  t.deepEqual(await readdir(dir), ["f.json"]);
});

test("removeStaleTempFiles deletes only the target's own temp files", async (t) => {
  const dir = await tempDir(t);
  const target = path.join(dir, "index.json");
  await writeFile(tempPathFor(target), '{"torn');
  await writeFile(tempPathFor(target), "");
  await writeFile(path.join(dir, ".other.json.1.tmp"), "keep");
  await writeFile(path.join(dir, "index.json.bak"), "keep");
  t.is(await removeStaleTempFiles(target), 2);
  t.deepEqual((await readdir(dir)).sort(), [".other.json.1.tmp", "index.json.bak"]);
});

// --- store: CRUD and validation ------------------------------------------------------------

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

// --- store: lifecycle ----------------------------------------------------------------------

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

// --- store: durability ---------------------------------------------------------------------

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

// --- verify --------------------------------------------------------------------------------

function entry(over: Partial<CatalogEntry>): CatalogEntry {
  return { id: "m", digest: DIGEST, state: "Active", created_ms: 0, state_changed_ms: 0, ...over };
}

const provenance = {
  signatures: [{ signer: "org", algo: "cosign", verified: true }],
  sbom: { uri: "https://sbom.example.org/m.json" },
};

test("verify: a matching digest passes (relative file ref, uppercase expected hex)", async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, "w.gguf"), "weights");
  const v = await verifyEntry(entry({ digest: `sha256:${sha("weights")}`, source_url: "w.gguf", ...provenance }), {
    baseDir: dir,
    modelDir: path.join(dir, "none"),
    clock: () => 99,
  });
  t.deepEqual(v, { status: "passed", reason: "ok", checked_ms: 99, computed_digest: `sha256:${sha("weights")}`, warnings: [] });
  // Case-insensitive comparison, should a caller bypass the store's lowercase check.
  const upper = await verifyEntry(entry({ digest: `sha256:${sha("weights").toUpperCase()}`, source_url: "w.gguf", ...provenance }), {
    baseDir: dir,
    modelDir: dir,
  });
  t.is(upper.status, "passed");
});

test("verify: a mismatch fails with both digests in the error", async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, "w.gguf");
  await writeFile(file, "tampered");
  const v = await verifyEntry(entry({ digest: `sha256:${sha("weights")}`, source_url: `file:${file}` }), { baseDir: "/", modelDir: dir });
  t.is(v.status, "failed");
  t.is(v.reason, "digest_mismatch");
  t.is(v.computed_digest, `sha256:${sha("tampered")}`);
  t.true(v.error!.includes(sha("weights")) && v.error!.includes(sha("tampered")));
});

test("verify: a truncated sha256 cannot match, and the error says why", async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, "w"), "weights");
  const v = await verifyEntry(entry({ digest: `sha256:${sha("weights").slice(0, 12)}`, source_url: "w" }), { baseDir: dir, modelDir: dir });
  t.is(v.reason, "digest_mismatch");
  t.regex(v.error, /12 hex digits/);
});

test("verify: the cached modelDir/model is used when the source is remote", async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, "model"), "weights");
  const v = await verifyEntry(entry({ digest: `sha256:${sha("weights")}`, source_url: "hf:a/b/c.gguf" }), { baseDir: "/", modelDir: dir });
  t.is(v.reason, "ok");
});

test("verify: a local file ref whose file is missing fails with artifact_missing", async (t) => {
  const dir = await tempDir(t);
  const v = await verifyEntry(entry({ source_url: "file:gone.gguf" }), { baseDir: dir, modelDir: dir });
  t.is(v.status, "failed");
  t.is(v.reason, "artifact_missing");
  t.regex(v.error, /gone\.gguf/);
});

test("verify: a remote, uncached artifact stays pending with not_local", async (t) => {
  const dir = await tempDir(t);
  for (const source_url of ["hf:a/b", "s3://b/k", undefined]) {
    const v = await verifyEntry(entry({ source_url }), { baseDir: dir, modelDir: path.join(dir, "cache") });
    t.is(v.status, "pending");
    t.is(v.reason, "not_local");
    t.true(v.warnings.includes("artifact is not local; digest not checked"));
    t.is(v.computed_digest, undefined);
  }
});

test("verify: a non-sha256 digest is not checked (unsupported_digest, pending)", async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, "model"), "weights");
  const v = await verifyEntry(entry({ digest: "blake3:00ff00ff" }), { baseDir: dir, modelDir: dir });
  t.is(v.status, "pending");
  t.is(v.reason, "unsupported_digest");
  t.true(v.warnings.some((w) => w.includes("blake3")));
});

test("verify: a directory artifact is not hashed", async (t) => {
  const dir = await tempDir(t);
  const v = await verifyEntry(entry({ source_url: dir }), { baseDir: "/", modelDir: dir });
  t.is(v.status, "pending");
  t.is(v.reason, "unsupported_digest");
});

test("verify: missing signatures and SBOM only warn, mentioning the trust policy when it requires them", async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, "model"), "w");
  const digest = `sha256:${sha("w")}`;
  const opts = { baseDir: dir, modelDir: dir };

  const bare = await verifyEntry(entry({ digest }), opts);
  t.is(bare.status, "passed");
  t.deepEqual(bare.warnings, ["no signatures recorded", "no SBOM recorded"]);

  const unverified = await verifyEntry(
    entry({ digest, signatures: [{ signer: "x", verified: false }], sbom: { digest: "sha256:77aa88bb" } }),
    opts,
  );
  t.is(unverified.status, "passed");
  t.deepEqual(unverified.warnings, ["no verified signature"]);

  const strict = await verifyEntry(entry({ digest, trust_policy: { mode: "strict", require_signature: true, require_sbom: true } }), opts);
  t.is(strict.status, "passed");
  t.deepEqual(strict.warnings, ["no signatures recorded (required by trust policy)", "no SBOM recorded (required by trust policy)"]);
});

test("verify: a 5 MB file hashes correctly by streaming", async (t) => {
  const dir = await tempDir(t);
  const data = Buffer.alloc(5 * 1024 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 13)) & 0xff;
  await writeFile(path.join(dir, "model"), data);
  t.is(await sha256File(path.join(dir, "model")), sha(data));
  const v = await verifyEntry(entry({ digest: `sha256:${sha(data)}` }), { baseDir: dir, modelDir: dir });
  t.is(v.reason, "ok");
});

test("verify + store: a verification result round-trips through the catalog", async (t) => {
  const root = await tempDir(t);
  const store = await CatalogStore.open(root);
  await store.create({ id: "m", digest: `sha256:${sha("w")}` });
  await mkdir(store.modelDir("m"), { recursive: true });
  await writeFile(path.join(store.modelDir("m"), "model"), "w");
  const v = await verifyEntry(store.get("m")!, { baseDir: root, modelDir: store.modelDir("m") });
  await store.recordVerification("m", v);
  t.deepEqual((await CatalogStore.open(root)).get("m")!.verification, v);
});
