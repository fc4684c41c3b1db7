import test from "ava";
import { rm } from "node:fs/promises";
import path from "node:path";
import { verifyEntry, type CatalogEntry } from "../../support/catalog-json.js";
import { LOOPBACK_TLS_CERT } from "../../fakes/loopback-tls.js";
import { GGUF_BYTES, GGUF_FILE, GGUF_REPO, HF_REPO, hubWorld, sha256Hex, type HubWorld } from "../workers/provision/provision-harness.js";

// The model cache as the sidecars' provisioner writes it (fetched from the
// fake hub), read by catalog verify.

const GGUF_REF = `hf:${GGUF_REPO}/${GGUF_FILE}`;
const GOOD = `sha256:${sha256Hex(GGUF_BYTES)}`;
const WRONG = `sha256:${sha256Hex("other weights")}`;
const provenance = { signatures: [{ signer: "org", algo: "cosign", verified: true }], sbom: { uri: "https://sbom.example.org/m.json" } };

function entry(source_url: string, digest: string): CatalogEntry {
  return { id: "m", digest, source_url, state: "Active", created_ms: 0, state_changed_ms: 0, ...provenance };
}

function verifyIn(w: HubWorld, e: CatalogEntry, hubEndpoint = w.fake.url) {
  return verifyEntry(e, {
    baseDir: w.dir,
    modelDir: path.join(w.dir, "catalog", "m"),
    modelCache: { root: w.cacheDir, hubEndpoint },
    clock: () => 7,
  });
}

test("an hf: model in the model cache is verified from its cached bytes: passed when they are the digest, failed when not", async (t) => {
  const w = await hubWorld(t);
  await w.provision(GGUF_REF);
  t.deepEqual(await verifyIn(w, entry(GGUF_REF, GOOD)), {
    status: "passed",
    reason: "ok",
    checked_ms: 7,
    computed_digest: GOOD,
    warnings: [],
  });
  const failed = await verifyIn(w, entry(GGUF_REF, WRONG));
  t.like(failed, { status: "failed", reason: "digest_mismatch", computed_digest: GOOD });
  t.regex(failed.error as string, /digest mismatch/);
  const pinned = `hf:${GGUF_REPO}@v1/${GGUF_FILE}`;
  t.like(
    await verifyIn(w, entry(pinned, GOOD)),
    { status: "pending", reason: "not_local" },
    "another revision is another entry, not fetched yet",
  );
  await w.provision(pinned);
  t.like(await verifyIn(w, entry(pinned, GOOD)), { status: "passed", reason: "ok" });
});

test("an https:// model in the model cache is verified from its cached bytes", async (t) => {
  const w = await hubWorld(t, undefined, { tls: true });
  const url = w.fake.cdnUrlOf(GGUF_REPO, GGUF_FILE);
  t.like(await verifyIn(w, entry(url, GOOD)), { status: "pending", reason: "not_local" });
  await w.provision(url, { ca: LOOPBACK_TLS_CERT });
  t.like(await verifyIn(w, entry(url, GOOD)), { status: "passed", reason: "ok", computed_digest: GOOD });
});

test("a model that is not in the cache, or whose bytes left it, or was fetched from another hub, stays pending as not local", async (t) => {
  const w = await hubWorld(t);
  const notLocal = { status: "pending", reason: "not_local" };
  const missing = await verifyIn(w, entry(GGUF_REF, GOOD));
  t.like(missing, notLocal);
  t.true(missing.warnings.includes("artifact is not local; digest not checked"), "the same outcome as before the cache was read");
  const got = await w.provision(GGUF_REF);
  t.like(await verifyIn(w, entry(GGUF_REF, GOOD), "https://huggingface.co"), notLocal, "the entry is the fake hub's, not the public hub's");
  await rm(path.join(w.cacheDir, "blobs", got.sha256));
  t.like(await verifyIn(w, entry(GGUF_REF, GOOD)), notLocal, "an index entry without its bytes is not a cached model");
});

test("a whole repository in the cache is found but, being a directory, its digest is not checked", async (t) => {
  const w = await hubWorld(t);
  await w.provision(`hf:${HF_REPO}`);
  const v = await verifyIn(w, entry(`hf:${HF_REPO}`, GOOD));
  t.like(v, { status: "pending", reason: "unsupported_digest" });
  t.true(v.warnings.some((x) => /is not a regular file/.test(x)));
});
