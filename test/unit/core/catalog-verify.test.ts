import test from "ava";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { CatalogStore, sha256File, verifyEntry, type CatalogEntry } from "../../support/catalog-json.js";
import { DIGEST, sha, tempDir } from "./catalog-harness.js";

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
