import test from "ava";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { ModelCache } from "../../../../workers/provision/model-cache.js";
import { resolveUrl } from "../../../../workers/provision/hub-protocol.js";
import { ProvisionError } from "../../../../workers/provision/provision-error.js";
import { GGUF_BYTES, GGUF_FILE, GGUF_REPO, hubWorld, listFiles, sha256Hex, type HubWorld } from "./provision-harness.js";

const REF = `hf:${GGUF_REPO}/${GGUF_FILE}`;

function partOf(w: HubWorld): string {
  return new ModelCache(w.cacheDir).partPath(`hf-file ${resolveUrl(w.fake.url, GGUF_REPO, "main", GGUF_FILE)}`);
}

test("a connection cut mid-file is resumed with Range (and If-Range) from the bytes already there", async (t) => {
  const w = await hubWorld(t);
  w.fake.faults.cutAfterBytes = 50_000;
  w.fake.faults.cuts = 1;
  const got = await w.provision(REF);
  t.deepEqual(await readFile(got.path), GGUF_BYTES);
  t.is(got.sha256, sha256Hex(GGUF_BYTES));
  const [first, second] = w.fake.cdnGets();
  t.is(w.fake.cdnGets().length, 2);
  t.is(first!.headers.range, undefined);
  t.is(second!.headers.range, "bytes=50000-");
  t.regex(String(second!.headers["if-range"]), /^"[0-9a-f]{32}"$/, "the CDN's own ETag, not the hub's sha256");
});

test("a partial file left by an earlier, failed call is resumed by the next one", async (t) => {
  const w = await hubWorld(t);
  w.fake.faults.cutAfterBytes = 80_000;
  w.fake.faults.cuts = Infinity;
  const err = await t.throwsAsync(w.provision(REF, { retries: 0 }), { instanceOf: ProvisionError });
  t.is(err.kind, "network");
  t.true(err.retriable);
  t.is((await stat(partOf(w))).size, 80_000);
  w.fake.faults.cuts = 0;
  const got = await w.provision(REF);
  t.deepEqual(await readFile(got.path), GGUF_BYTES);
  t.is(w.fake.cdnGets().at(-1)!.headers.range, "bytes=80000-");
  t.deepEqual(await listFiles(path.join(w.cacheDir, "partial")), []);
});

test("a cut on every try gives up after the retries, kept bytes and all", async (t) => {
  const w = await hubWorld(t);
  w.fake.faults.cutAfterBytes = 30_000;
  w.fake.faults.cuts = Infinity;
  const err = await t.throwsAsync(w.provision(REF, { retries: 2 }), { instanceOf: ProvisionError });
  t.is(err.kind, "network");
  t.regex(err.message, /gave up after 3 attempts/);
  t.is(w.fake.cdnGets().length, 3);
  // Each try starts where the last one stopped.
  t.deepEqual(
    w.fake.cdnGets().map((r) => r.headers.range),
    [undefined, "bytes=30000-", "bytes=60000-"],
  );
});

test("a server that ignores Range restarts from the first byte and the file still ends right", async (t) => {
  const w = await hubWorld(t);
  w.fake.faults.cutAfterBytes = 50_000;
  w.fake.faults.cuts = 1;
  w.fake.faults.ignoreRange = true;
  const got = await w.provision(REF);
  t.deepEqual(await readFile(got.path), GGUF_BYTES);
  t.is(w.fake.cdnGets().length, 2);
});

test("wrong bytes fail with digest_mismatch and leave no blob, partial file or index entry", async (t) => {
  const w = await hubWorld(t);
  w.fake.faults.wrongBytes = true;
  const err = await t.throwsAsync(w.provision(REF), { instanceOf: ProvisionError });
  t.is(err.kind, "digest_mismatch");
  t.false(err.retriable);
  t.regex(err.message, new RegExp(`is not the expected ${sha256Hex(GGUF_BYTES)}.*deleted`));
  t.deepEqual(await listFiles(path.join(w.cacheDir, "blobs")), []);
  t.deepEqual(await listFiles(path.join(w.cacheDir, "partial")), []);
  t.deepEqual(await listFiles(path.join(w.cacheDir, "index")), []);
  t.is(w.fake.cdnGets().length, 1, "a mismatch is not retried");
});

test("the catalog's digest is enforced on a file the hub says nothing about", async (t) => {
  const w = await hubWorld(t);
  const err = await t.throwsAsync(w.provision(`hf:${GGUF_REPO}/README.md`, { expectedSha256: "b".repeat(64) }), {
    instanceOf: ProvisionError,
  });
  t.is(err.kind, "digest_mismatch");
  const ok = await w.provision(`hf:${GGUF_REPO}/README.md`, { expectedSha256: `sha256:${sha256Hex("# tiny chat\n")}` });
  t.true(ok.verified);
});

test("aborting rejects with aborted and keeps the bytes so far for the next try", async (t) => {
  const w = await hubWorld(t);
  w.fake.faults.chunkBytes = 10_000;
  w.fake.faults.chunkDelayMs = 30;
  const controller = new AbortController();
  const run = w.provision(REF, {
    signal: controller.signal,
    progressIntervalMs: 0,
    onProgress: (p) => {
      if (p.phase === "downloading" && p.bytesDone >= 30_000) controller.abort();
    },
  });
  const err = await t.throwsAsync(run, { instanceOf: ProvisionError });
  t.is(err.kind, "aborted");
  // The abort reaches the download asynchronously; wait until it has let go of the lock.
  for (let i = 0; i < 100 && (await listFiles(path.join(w.cacheDir, "locks"))).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  const kept = (await stat(partOf(w))).size;
  t.true(kept >= 30_000 && kept < GGUF_BYTES.length, `kept ${kept}`);
  w.fake.faults.chunkDelayMs = 0;
  const got = await w.provision(REF);
  t.deepEqual(await readFile(got.path), GGUF_BYTES);
  t.is(w.fake.cdnGets().at(-1)!.headers.range, `bytes=${kept}-`);
});

test("a partial file that is already whole (a crash before the rename) is finished on the server's 416", async (t) => {
  const w = await hubWorld(t);
  const cache = new ModelCache(w.cacheDir);
  const key = `hf-file ${resolveUrl(w.fake.url, GGUF_REPO, "main", GGUF_FILE)}`;
  await mkdir(path.dirname(cache.partPath(key)), { recursive: true });
  await writeFile(cache.partPath(key), GGUF_BYTES);
  await writeFile(cache.partMetaPath(key), JSON.stringify({ sha256: sha256Hex(GGUF_BYTES), sizeBytes: GGUF_BYTES.length }));
  const got = await w.provision(REF);
  t.deepEqual(await readFile(got.path), GGUF_BYTES);
  t.is(w.fake.cdnGets().length, 1);
  t.is(w.fake.cdnGets()[0]!.headers.range, `bytes=${GGUF_BYTES.length}-`);
});

test("a partial file of another version of the file (the branch moved on) is dropped, not continued", async (t) => {
  const w = await hubWorld(t);
  const cache = new ModelCache(w.cacheDir);
  const key = `hf-file ${resolveUrl(w.fake.url, GGUF_REPO, "main", GGUF_FILE)}`;
  await mkdir(path.dirname(cache.partPath(key)), { recursive: true });
  await writeFile(cache.partPath(key), Buffer.alloc(1_000, 1));
  await writeFile(cache.partMetaPath(key), JSON.stringify({ sha256: "e".repeat(64), sizeBytes: 5_000 }));
  const got = await w.provision(REF);
  t.deepEqual(await readFile(got.path), GGUF_BYTES);
  t.deepEqual(
    w.fake.cdnGets().map((r) => r.headers.range),
    ["bytes=1000-", undefined],
  );
});
