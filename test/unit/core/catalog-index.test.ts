import test from "ava";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CatalogStore } from "../../support/catalog-json.js";

// An index as the build before typed catalog messages wrote it (JSON.stringify
// of the hand-written CatalogEntry), every field in use.
const PREVIOUS_BUILD_INDEX = {
  schema_version: 1,
  models: {
    full: {
      id: "full",
      digest: "sha256:01ab23cd45ef",
      source_url: "hf:TinyOrg/tiny-chat-GGUF/tiny-chat.q4_0.gguf",
      tags: ["chat", "stable"],
      manifests: [{ digest: "sha256:01ab23cd45ef", size_bytes: 637000000 }, {}],
      signatures: [{ signer: "TinyOrg", algo: "cosign", verified: true, timestamp_ms: 1716000000000 }],
      sbom: { uri: "https://sbom.example.org/tiny-chat.cdx.json", digest: "sha256:77aa88bb" },
      trust_policy: { mode: "strict", allowed_registries: ["r.example"], require_signature: true, require_sbom: false, ca_roots: ["PEM"] },
      state: "Retired",
      state_changed_ms: 1716000001000,
      created_ms: 1715999990000,
      retire_deadline_ms: 1716000301000,
      verification: {
        status: "failed",
        checked_ms: 1716000005000,
        warnings: ["no SBOM recorded"],
        computed_digest: `sha256:${"1".repeat(64)}`,
        error: "digest mismatch",
      },
    },
    bare: { id: "bare", digest: "sha256:deadbeef", state: "Active", state_changed_ms: 5, created_ms: 5 },
  },
};

test("an index written by the previous build opens, serves the same entries, and is rewritten in the same layout", async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), "llorch-catalog-index-"));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const indexPath = path.join(root, "index.json");
  await writeFile(indexPath, JSON.stringify(PREVIOUS_BUILD_INDEX, null, 2) + "\n");

  const store = await CatalogStore.open(root, () => 9);
  t.deepEqual(store.list(), [PREVIOUS_BUILD_INDEX.models.bare, PREVIOUS_BUILD_INDEX.models.full]);

  await store.create({ id: "new", digest: "sha256:00ff00ff" });
  const rewritten = JSON.parse(await readFile(indexPath, "utf8"));
  t.is(rewritten.schema_version, 1);
  t.deepEqual(Object.keys(rewritten.models), ["bare", "full", "new"]);
  t.deepEqual(rewritten.models.full, PREVIOUS_BUILD_INDEX.models.full);
  t.deepEqual(rewritten.models.bare, PREVIOUS_BUILD_INDEX.models.bare);
  t.deepEqual(rewritten.models.new, { id: "new", digest: "sha256:00ff00ff", state: "Active", state_changed_ms: 9, created_ms: 9 });
});
