import test from "ava";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { LOOPBACK_TLS_CERT } from "../../../fakes/loopback-tls.js";
import { manifestDigest } from "../../../../workers/provision/file-hash.js";
import { ProvisionError } from "../../../../workers/provision/provision-error.js";
import { provisionModel } from "../../../../workers/provision/provision-model.js";
import { GGUF_BYTES, GGUF_FILE, GGUF_REPO, HF_REPO, hubWorld, listFiles, sha256Hex, tempDir } from "./provision-harness.js";

test("an https:// file is fetched once into the cache, under its own file name; no token goes to a host that is not the hub", async (t) => {
  const w = await hubWorld(t, undefined, { tls: true });
  const url = w.fake.cdnUrlOf(GGUF_REPO, GGUF_FILE);
  const got = await w.provision(url, { ca: LOOPBACK_TLS_CERT, env: { HF_TOKEN: w.fake.token } });
  t.deepEqual(await readFile(got.path), GGUF_BYTES);
  t.is(path.basename(got.path), sha256Hex(GGUF_BYTES), "the URL's last path segment");
  t.like(got, { sha256: sha256Hex(GGUF_BYTES), source: "download", verified: false });
  t.true(w.fake.requests.every((r) => r.headers.authorization === undefined));
  const again = await w.provision(url, { ca: LOOPBACK_TLS_CERT });
  t.is(again.source, "cache");
  t.is(w.fake.cdnGets().length, 1);
});

test("an https:// ref to the hub's own resolve URL is the hub's: token, redirect and X-Linked-Etag included", async (t) => {
  const w = await hubWorld(t, undefined, { tls: true });
  const got = await w.provision(`${w.fake.url}/${GGUF_REPO}/resolve/main/${GGUF_FILE}`, {
    ca: LOOPBACK_TLS_CERT,
    env: { HF_TOKEN: w.fake.token },
  });
  t.is(path.basename(got.path), GGUF_FILE);
  t.true(got.verified);
  t.is(got.commit, w.fake.commitOf(GGUF_REPO));
  t.is(w.fake.requests.find((r) => r.server === "hub")?.headers.authorization, `Bearer ${w.fake.token}`);
  t.is(w.fake.requests.find((r) => r.server === "cdn")?.headers.authorization, undefined);
});

test("an https server whose certificate nobody vouches for is refused", async (t) => {
  const w = await hubWorld(t, undefined, { tls: true });
  const err = await t.throwsAsync(w.provision(w.fake.cdnUrlOf(GGUF_REPO, GGUF_FILE), { retries: 0 }), { instanceOf: ProvisionError });
  t.is(err.kind, "network");
  t.regex(err.message, /certificate/i);
  t.false(err.message.includes("X-Amz-Signature"), "a signed URL's query stays out of messages");
});

test("file: refs and relative paths are used where they are, never copied", async (t) => {
  const dir = await tempDir(t);
  const cacheDir = path.join(dir, "models");
  await writeFile(path.join(dir, "local.gguf"), GGUF_BYTES);
  for (const [ref, baseDir] of [
    [`file:${path.join(dir, "local.gguf")}`, undefined],
    ["local.gguf", dir],
    ["file:./local.gguf", dir],
  ] as const) {
    const got = await provisionModel(ref, { cacheDir, baseDir, env: { HOME: dir } });
    t.like(got, {
      path: path.join(dir, "local.gguf"),
      sha256: sha256Hex(GGUF_BYTES),
      sizeBytes: GGUF_BYTES.length,
      source: "local",
      verified: false,
    });
  }
  t.deepEqual(await listFiles(path.join(cacheDir, "blobs")), []);
  const checked = await provisionModel("local.gguf", { cacheDir, baseDir: dir, env: { HOME: dir }, expectedSha256: sha256Hex(GGUF_BYTES) });
  t.true(checked.verified);
  const wrong = await t.throwsAsync(
    provisionModel("local.gguf", { cacheDir, baseDir: dir, env: { HOME: dir }, expectedSha256: "c".repeat(64) }),
    { instanceOf: ProvisionError },
  );
  t.is(wrong.kind, "digest_mismatch");
  const missing = await t.throwsAsync(provisionModel("nope.gguf", { cacheDir, baseDir: dir, env: { HOME: dir } }), {
    instanceOf: ProvisionError,
  });
  t.is(missing.kind, "not_found");
  t.regex(missing.message, /nope\.gguf does not exist/);
});

test("a local directory is used in place, its files listed with their digests", async (t) => {
  const dir = await tempDir(t);
  const model = path.join(dir, "my-model");
  await mkdir(path.join(model, "sub"), { recursive: true });
  await writeFile(path.join(model, "config.json"), "{}");
  await writeFile(path.join(model, "sub", "weights.bin"), "weights");
  const got = await provisionModel(`file:${model}`, { cacheDir: path.join(dir, "models"), env: { HOME: dir } });
  t.is(got.path, model);
  t.deepEqual(got.files, [
    { path: "config.json", sha256: sha256Hex("{}"), sizeBytes: 2 },
    { path: "sub/weights.bin", sha256: sha256Hex("weights"), sizeBytes: 7 },
  ]);
  t.is(got.sha256, manifestDigest(got.files!));
});

test("a local file is hashed once and its digest remembered while it does not change", async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, "m.gguf");
  await writeFile(file, "one");
  const options = { cacheDir: path.join(dir, "models"), env: { HOME: dir } };
  t.is((await provisionModel(file, options)).sha256, sha256Hex("one"));
  const index = await listFiles(path.join(dir, "models", "index"));
  t.is(index.length, 1);
  t.like(JSON.parse(await readFile(path.join(dir, "models", "index", index[0]!), "utf8")).entry, {
    kind: "hash",
    sha256: sha256Hex("one"),
    sizeBytes: 3,
  });
  await writeFile(file, "two!");
  t.is((await provisionModel(file, options)).sha256, sha256Hex("two!"), "a changed file is hashed again");
});

test("s3:// and oci:// refs are refused at once as not supported yet; a bad ref is invalid_ref", async (t) => {
  for (const ref of ["s3://bucket/triton/repo", "oci://ghcr.io/acme/tiny:v1"]) {
    const started = Date.now();
    const err = await t.throwsAsync(provisionModel(ref, { env: { HF_ENDPOINT: "http://127.0.0.1:9" } }), { instanceOf: ProvisionError });
    t.is(err.kind, "unsupported_scheme");
    t.regex(err.message, /not supported yet/);
    t.true(Date.now() - started < 1_000);
  }
  const bad = await t.throwsAsync(provisionModel("ftp://x/y"), { instanceOf: ProvisionError });
  t.is(bad.kind, "invalid_ref");
  t.regex(bad.message, /supported forms/);
});

test("a download that would not fit on the disk is refused before the CDN is asked", async (t) => {
  const w = await hubWorld(t);
  const statfs = (): Promise<{ bavail: bigint; bsize: number }> => Promise.resolve({ bavail: 10n, bsize: 4096 });
  const err = await t.throwsAsync(w.provision(`hf:${GGUF_REPO}/${GGUF_FILE}`, { statfs }), { instanceOf: ProvisionError });
  t.is(err.kind, "no_space");
  t.regex(err.message, /needs 195\.3 KiB more and 40\.0 KiB are free/);
  t.is(w.fake.cdnGets().length, 0);
  const before = w.fake.requests.length;
  const repo = await t.throwsAsync(w.provision(`hf:${HF_REPO}`, { statfs }), { instanceOf: ProvisionError });
  t.is(repo.kind, "no_space");
  t.false(
    w.fake.requests.slice(before).some((r) => r.path.includes("/resolve/")),
    "a repository is measured from its listing, before any file",
  );
  const roomy = (): Promise<{ bavail: number; bsize: number }> => Promise.resolve({ bavail: 1_000_000, bsize: 4096 });
  t.is((await w.provision(`hf:${GGUF_REPO}/${GGUF_FILE}`, { statfs: roomy })).source, "download");
});
