import test from "ava";
import { mkdir, readFile, realpath, writeFile } from "node:fs/promises";
import path from "node:path";
import { inspect } from "node:util";
import { ProvisionError } from "../../../../workers/provision/provision-error.js";
import { GATED_BYTES, GATED_REPO, GGUF_BYTES, GGUF_FILE, GGUF_REPO, hubWorld, listFiles, sha256Hex } from "./provision-harness.js";

const GGUF_REF = `hf:${GGUF_REPO}/${GGUF_FILE}`;
const GATED_REF = `hf:${GATED_REPO}/model.gguf`;

test("an hf: file is downloaded into the blob store, linked under its repository path and recorded in the index", async (t) => {
  const w = await hubWorld(t);
  const got = await w.provision(GGUF_REF);
  const commit = w.fake.commitOf(GGUF_REPO);
  t.is(got.path, path.join(w.cacheDir, "snapshots", "hf", "TinyOrg--tiny-chat-GGUF", commit, GGUF_FILE));
  t.deepEqual(await readFile(got.path), GGUF_BYTES);
  t.is(got.sha256, sha256Hex(GGUF_BYTES));
  t.is(got.sizeBytes, GGUF_BYTES.length);
  t.is(got.commit, commit);
  t.is(got.source, "download");
  t.true(got.verified, "checked against the hub's X-Linked-Etag");
  t.is(await realpath(got.path), await realpath(path.join(w.cacheDir, "blobs", got.sha256)));
  const index = await listFiles(path.join(w.cacheDir, "index"));
  t.is(index.length, 1);
  const entry = JSON.parse(await readFile(path.join(w.cacheDir, "index", index[0]!), "utf8")).entry;
  t.like(entry, { kind: "file", sha256: got.sha256, sizeBytes: GGUF_BYTES.length, commit, verified: true, source: GGUF_REF });
  t.deepEqual(await listFiles(path.join(w.cacheDir, "partial")), [], "nothing partial left behind");
  t.deepEqual(await listFiles(path.join(w.cacheDir, "locks")), [], "the lock is released");
});

test("a second call is served from the cache without a request", async (t) => {
  const w = await hubWorld(t);
  const first = await w.provision(GGUF_REF);
  const requests = w.fake.requests.length;
  const second = await w.provision(GGUF_REF);
  t.is(w.fake.requests.length, requests);
  t.is(second.source, "cache");
  t.is(second.path, first.path);
  t.is(second.sha256, first.sha256);
  t.true(second.verified);
});

test("a revision in the ref is the one resolved", async (t) => {
  const w = await hubWorld(t);
  const commit = w.fake.commitOf(GGUF_REPO);
  await w.provision(`hf:${GGUF_REPO}@v1/${GGUF_FILE}`);
  t.is(w.fake.requests[0]!.path, `/${GGUF_REPO}/resolve/v1/${GGUF_FILE}`);
  const pinned = await w.provision(`hf:${GGUF_REPO}@${commit}/${GGUF_FILE}`);
  t.is(w.fake.requests.at(-2)!.path, `/${GGUF_REPO}/resolve/${commit}/${GGUF_FILE}`);
  t.is(pinned.source, "download", "another revision is another cache key…");
  t.is(w.fake.cdnGets().length, 2, "…but the CDN is asked again only because nothing knew the digest beforehand");
});

test("a file kept in git (no LFS) is served by the hub and verified by its git blob id", async (t) => {
  const w = await hubWorld(t);
  const got = await w.provision(`hf:${GGUF_REPO}/README.md`);
  t.is(await readFile(got.path, "utf8"), "# tiny chat\n");
  t.true(got.verified);
  t.is(w.fake.cdnGets().length, 0);
});

test("a gated repository without a token is unauthorized, says to set HF_TOKEN, and keeps nothing", async (t) => {
  const w = await hubWorld(t);
  const err = await t.throwsAsync(w.provision(GATED_REF), { instanceOf: ProvisionError });
  t.is(err.kind, "unauthorized");
  t.regex(err.message, /gated.*set HF_TOKEN/);
  t.false(err.retriable);
  t.deepEqual(await listFiles(path.join(w.cacheDir, "blobs")), []);
});

test("with HF_TOKEN a gated file downloads; the token goes to the hub's host and never to the CDN's", async (t) => {
  const w = await hubWorld(t);
  const got = await w.provision(GATED_REF, { env: { HF_TOKEN: w.fake.token } });
  t.deepEqual(await readFile(got.path), GATED_BYTES);
  const hub = w.fake.requests.filter((r) => r.server === "hub");
  const cdn = w.fake.requests.filter((r) => r.server === "cdn");
  t.true(hub.length > 0 && cdn.length > 0);
  t.true(hub.every((r) => r.headers.authorization === `Bearer ${w.fake.token}`));
  t.true(cdn.every((r) => r.headers.authorization === undefined));
});

test("the token file under HF_HOME is used when HF_TOKEN is unset, and HF_TOKEN_PATH moves it", async (t) => {
  const w = await hubWorld(t);
  await mkdir(w.env.HF_HOME!, { recursive: true });
  await writeFile(path.join(w.env.HF_HOME!, "token"), `${w.fake.token}\n`);
  t.is((await w.provision(GATED_REF)).source, "download");
  const elsewhere = path.join(w.dir, "other-token");
  await writeFile(elsewhere, "hf_not_the_right_one");
  const err = await t.throwsAsync(
    w.provision(`hf:${GATED_REPO}@main/model.gguf`, { env: { HF_TOKEN_PATH: elsewhere }, cacheDir: path.join(w.dir, "c2") }),
    { instanceOf: ProvisionError },
  );
  t.is(err.kind, "unauthorized");
  t.true(err.message.includes(elsewhere), "says which token was refused, by where it came from");
});

test("a wrong token is refused and appears in no error, cause or stack, even when the server echoes it", async (t) => {
  const w = await hubWorld(t);
  w.fake.faults.echoCredentials = true;
  const secret = "hf_wrong_secret_9f8e7d6c5b4a";
  const err = await t.throwsAsync(w.provision(GATED_REF, { env: { HF_TOKEN: secret } }), { instanceOf: ProvisionError });
  t.is(err.kind, "unauthorized");
  t.regex(err.message, /refused the token from HF_TOKEN/);
  t.regex(err.message, /\[redacted\]/, "the echo was there, and is redacted");
  for (const text of [err.message, String(err.stack), inspect(err, { depth: 5 }), JSON.stringify(err)]) t.false(text.includes(secret));
});

test("an unknown file, revision or repository is not_found (a repository unknown to an anonymous client may be private)", async (t) => {
  const w = await hubWorld(t);
  const file = await t.throwsAsync(w.provision(`hf:${GGUF_REPO}/missing.gguf`), { instanceOf: ProvisionError });
  t.like(file, { kind: "not_found" });
  t.regex(file.message, /404 EntryNotFound/);
  const revision = await t.throwsAsync(w.provision(`hf:${GGUF_REPO}@nope/${GGUF_FILE}`), { instanceOf: ProvisionError });
  t.like(revision, { kind: "not_found" });
  t.regex(revision.message, /RevisionNotFound/);
  const anonymous = await t.throwsAsync(w.provision("hf:NoOrg/no-repo/x.gguf"), { instanceOf: ProvisionError });
  t.like(anonymous, { kind: "not_found" });
  t.regex(anonymous.message, /401 RepoNotFound.*if it is private or gated, set HF_TOKEN/);
  const withToken = await t.throwsAsync(w.provision("hf:NoOrg/no-repo/x.gguf", { env: { HF_TOKEN: w.fake.token } }), {
    instanceOf: ProvisionError,
  });
  t.like(withToken, { kind: "not_found" });
  t.regex(withToken.message, /404 RepoNotFound/);
});

test("an expected digest the hub contradicts fails before a byte is downloaded", async (t) => {
  const w = await hubWorld(t);
  const err = await t.throwsAsync(w.provision(GGUF_REF, { expectedSha256: `sha256:${"0".repeat(64)}` }), { instanceOf: ProvisionError });
  t.is(err.kind, "digest_mismatch");
  t.is(w.fake.cdnGets().length, 0);
});

test("the expected digest is checked against the cache too: a cached file with another digest is fetched again", async (t) => {
  const w = await hubWorld(t);
  await w.provision(GGUF_REF);
  const ok = await w.provision(GGUF_REF, { expectedSha256: sha256Hex(GGUF_BYTES).toUpperCase() });
  t.is(ok.source, "cache");
  const err = await t.throwsAsync(w.provision(GGUF_REF, { expectedSha256: "a".repeat(64) }), { instanceOf: ProvisionError });
  t.is(err.kind, "digest_mismatch");
  const bad = await t.throwsAsync(w.provision(GGUF_REF, { expectedSha256: "sha256:deadbeef" }), { instanceOf: ProvisionError });
  t.is(bad.kind, "config");
});
