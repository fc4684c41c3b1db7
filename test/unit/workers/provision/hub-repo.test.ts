import test from "ava";
import { mkdir, readFile, realpath, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { manifestDigest } from "../../../../workers/provision/file-hash.js";
import { ProvisionError } from "../../../../workers/provision/provision-error.js";
import { gitBlobOid } from "../../../fakes/hf-hub-fake.js";
import { bytesOf, GGUF_BYTES, GGUF_FILE, GGUF_REPO, HF_REPO, hubWorld, listFiles, sha256Hex } from "./provision-harness.js";

test("a whole repository is listed at one commit and fetched into one snapshot directory laid out as the repository", async (t) => {
  const w = await hubWorld(t);
  const got = await w.provision(`hf:${HF_REPO}`);
  const commit = w.fake.commitOf(HF_REPO);
  t.is(got.path, path.join(w.cacheDir, "snapshots", "hf", "TinyOrg--tiny-chat-hf", commit));
  t.is(got.commit, commit);
  t.deepEqual(await listFiles(got.path), ["config.json", "extra/adapter.bin", "model.safetensors", "tokenizer.json"]);
  t.is(await readFile(path.join(got.path, "config.json"), "utf8"), '{"model_type":"llama"}\n');
  t.deepEqual(await readFile(path.join(got.path, "model.safetensors")), bytesOf(64_000, "safetensors"));
  t.deepEqual(
    got.files?.map((f) => f.path),
    ["config.json", "tokenizer.json", "model.safetensors", "extra/adapter.bin"].sort(),
  );
  t.is(
    got.sizeBytes,
    got.files!.reduce((sum, f) => sum + f.sizeBytes, 0),
  );
  t.is(got.sha256, manifestDigest(got.files!));
  t.true(got.verified, "LFS files by sha256, git files by blob id");
  t.is(got.source, "download");
  // Every file was fetched at the listed commit, not at a branch that may move meanwhile.
  const resolves = w.fake.requests.filter((r) => r.path.includes("/resolve/"));
  t.true(resolves.length === 4 && resolves.every((r) => r.path.includes(`/resolve/${commit}/`)));
  t.true(w.fake.requests.some((r) => r.path === `/api/models/${HF_REPO}/revision/main`));
});

test("a repository is served from the cache the second time without a request", async (t) => {
  const w = await hubWorld(t);
  const first = await w.provision(`hf:${HF_REPO}`);
  const requests = w.fake.requests.length;
  const second = await w.provision(`hf:${HF_REPO}`);
  t.is(w.fake.requests.length, requests);
  t.like(second, { path: first.path, sha256: first.sha256, source: "cache", verified: true });
});

test("a listing in several pages (Link: rel=next) is read to the end", async (t) => {
  const w = await hubWorld(t);
  w.fake.treePageSize = 2;
  const got = await w.provision(`hf:${HF_REPO}`);
  t.is(got.files?.length, 4);
  t.true(w.fake.requests.filter((r) => r.path.includes("/tree/")).length >= 3);
});

test("a listing that names a path outside the repository is refused", async (t) => {
  const w = await hubWorld(t, [{ id: "Evil/repo", files: [{ path: "../../escape.txt", content: "x", lfs: false }] }]);
  const err = await t.throwsAsync(w.provision("hf:Evil/repo"), { instanceOf: ProvisionError });
  t.is(err.kind, "http_error");
  t.regex(err.message, /unusable path/);
  t.deepEqual(await listFiles(w.dir), []);
});

test("a repository file whose bytes are not what the listing says fails and keeps nothing of it", async (t) => {
  const w = await hubWorld(t);
  w.fake.faults.wrongBytes = true;
  const err = await t.throwsAsync(w.provision(`hf:${HF_REPO}`), { instanceOf: ProvisionError });
  t.is(err.kind, "digest_mismatch");
  t.deepEqual(await listFiles(path.join(w.cacheDir, "blobs")), []);
});

/** Lays a file out in a Hugging Face hub cache as huggingface_hub does: blob by etag, snapshot symlink, refs/main. */
async function seedHubCache(
  hubCache: string,
  repoId: string,
  commit: string,
  file: string,
  bytes: Buffer,
  blobName = sha256Hex(bytes),
): Promise<string> {
  const repoDir = path.join(hubCache, `models--${repoId.replace("/", "--")}`);
  await mkdir(path.join(repoDir, "blobs"), { recursive: true });
  await mkdir(path.join(repoDir, "refs"), { recursive: true });
  await mkdir(path.join(repoDir, "snapshots", commit), { recursive: true });
  await writeFile(path.join(repoDir, "blobs", blobName), bytes);
  await writeFile(path.join(repoDir, "refs", "main"), commit);
  const entry = path.join(repoDir, "snapshots", commit, file);
  await symlink(path.join("..", "..", "blobs", blobName), entry);
  return entry;
}

test("a file already in the Hugging Face hub cache is used in place, without a request", async (t) => {
  const w = await hubWorld(t);
  const entry = await seedHubCache(path.join(w.env.HF_HOME!, "hub"), GGUF_REPO, w.fake.commitOf(GGUF_REPO), GGUF_FILE, GGUF_BYTES);
  const got = await w.provision(`hf:${GGUF_REPO}/${GGUF_FILE}`);
  t.like(got, { path: entry, sha256: sha256Hex(GGUF_BYTES), sizeBytes: GGUF_BYTES.length, source: "hf-cache", verified: true });
  t.is(w.fake.requests.length, 0);
  t.deepEqual(await listFiles(path.join(w.cacheDir, "blobs")), [], "never copied");
});

test("HF_HUB_CACHE moves the hub cache, and a commit in the ref needs no refs/ file", async (t) => {
  const w = await hubWorld(t);
  const commit = w.fake.commitOf(GGUF_REPO);
  const hubCache = path.join(w.dir, "elsewhere");
  const entry = await seedHubCache(hubCache, GGUF_REPO, commit, GGUF_FILE, GGUF_BYTES);
  const got = await w.provision(`hf:${GGUF_REPO}@${commit}/${GGUF_FILE}`, { env: { HF_HUB_CACHE: hubCache } });
  t.is(got.path, entry);
  t.is(w.fake.requests.length, 0);
});

test("a hub-cache copy that is not what its blob name says is ignored and the file downloaded", async (t) => {
  const w = await hubWorld(t);
  await seedHubCache(
    path.join(w.env.HF_HOME!, "hub"),
    GGUF_REPO,
    w.fake.commitOf(GGUF_REPO),
    GGUF_FILE,
    Buffer.from("truncated"),
    sha256Hex(GGUF_BYTES),
  );
  const got = await w.provision(`hf:${GGUF_REPO}/${GGUF_FILE}`);
  t.is(got.source, "download");
  t.deepEqual(await readFile(got.path), GGUF_BYTES);
});

test("repository files found in the hub cache are linked from the snapshot instead of downloaded", async (t) => {
  const w = await hubWorld(t);
  const commit = w.fake.commitOf(HF_REPO);
  const weights = bytesOf(64_000, "safetensors");
  const entry = await seedHubCache(path.join(w.env.HF_HOME!, "hub"), HF_REPO, commit, "model.safetensors", weights);
  const got = await w.provision(`hf:${HF_REPO}`);
  t.is(await realpath(path.join(got.path, "model.safetensors")), await realpath(entry));
  t.false(
    w.fake.requests.some((r) => r.path.endsWith("/model.safetensors")),
    "not fetched",
  );
  t.is(w.fake.cdnGets().length, 1, "only the other LFS file came from the CDN");
});

test("a git-kept file in the hub cache is used only when its git blob id is the listing's", async (t) => {
  const w = await hubWorld(t);
  const commit = w.fake.commitOf(HF_REPO);
  const hubCache = path.join(w.env.HF_HOME!, "hub");
  const good = Buffer.from('{"version":"1.0"}\n');
  await seedHubCache(hubCache, HF_REPO, commit, "tokenizer.json", good, gitBlobOid(good));
  const edited = Buffer.from('{"model_type":"edited by hand"}\n');
  await seedHubCache(hubCache, HF_REPO, commit, "config.json", edited, gitBlobOid(Buffer.from('{"model_type":"llama"}\n')));
  const got = await w.provision(`hf:${HF_REPO}`);
  t.false(w.fake.requests.some((r) => r.path.endsWith("/tokenizer.json")));
  t.true(w.fake.requests.some((r) => r.path.endsWith("/config.json")));
  t.is(await readFile(path.join(got.path, "config.json"), "utf8"), '{"model_type":"llama"}\n');
  t.true(got.verified);
});
