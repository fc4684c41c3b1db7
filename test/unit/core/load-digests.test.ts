import test from "ava";
import { ErrorCode } from "../../../contracts/gen/llama_orch/v1/common.js";
import { CatalogModel, VerificationReason, VerificationStatus } from "../../../contracts/gen/llama_orch/v1/catalog.js";
import { CatalogStore } from "../../../core/catalog/catalog-store.js";
import { digestMismatchIn, expectedDigestOf, LoadDigests, type LoadFailure } from "../../../core/catalog/load-digests.js";
import { fakeClock, sha, tempDir } from "./catalog-harness.js";

const GOOD = `sha256:${sha("the registered weights")}`;
const OTHER = sha("what the replica got");

/** A refusal with only a sentence, as an older sidecar (or another implementation) sends it. */
const m = (message: string): LoadFailure => ({ message });

function model(fields: Partial<CatalogModel>): CatalogModel {
  return CatalogModel.fromPartial({ id: "m", digest: GOOD, ...fields });
}

test("a load is asked to match the catalog's digest only when it is a full sha256", (t) => {
  t.is(expectedDigestOf(model({})), GOOD);
  t.is(expectedDigestOf(undefined), "", "a model the catalog does not know: the source's own digest");
  t.is(expectedDigestOf(model({ digest: "sha256:deadbeef" })), "", "a truncated demo digest matches no bytes");
  t.is(expectedDigestOf(model({ digest: `sha512:${"a".repeat(128)}` })), "", "another algorithm cannot be checked by the replica");
  t.is(expectedDigestOf(model({ digest: `sha256:${"a".repeat(63)}` })), "");
});

test("a load failure is a digest mismatch when its typed reason is UNTRUSTED_ARTIFACT, with the computed digest its sentence names", (t) => {
  const typed = {
    code: ErrorCode.ERROR_CODE_UNTRUSTED_ARTIFACT,
    message: `hf:org/repo/m.gguf: sha256 ${OTHER} is not the expected ${GOOD.slice(7)}`,
  };
  t.deepEqual(digestMismatchIn(typed, GOOD), { computedDigest: `sha256:${OTHER}` });
  t.deepEqual(digestMismatchIn({ ...typed, message: "untrusted" }, GOOD), {}, "the reason alone suffices");
  t.is(digestMismatchIn({ code: ErrorCode.ERROR_CODE_INVALID_PARAMS, message: "ctx too large" }, GOOD), undefined);
});

test("without a typed reason, a load failure is a digest mismatch when it says so or in the provisioner's words", (t) => {
  t.deepEqual(digestMismatchIn(m(`digest mismatch: computed sha256:${OTHER}, expected ${GOOD}`), GOOD), {
    computedDigest: `sha256:${OTHER}`,
  });
  t.deepEqual(
    digestMismatchIn(
      m(`hf:org/repo/m.gguf: sha256 ${OTHER} is not the expected ${GOOD.slice(7)}; the downloaded bytes were deleted`),
      GOOD,
    ),
    { computedDigest: `sha256:${OTHER}` },
    "the provisioner's own sentence, without the convention's words",
  );
  t.deepEqual(
    digestMismatchIn(
      m(`DIGEST_MISMATCH: the hub says its sha256 is ${OTHER}, the expected digest is ${GOOD.slice(7)}; nothing was downloaded`),
      GOOD,
    ),
    {},
    "nothing was hashed: no computed digest",
  );
  t.is(digestMismatchIn(m("failed to start llama-server: exit code 1"), GOOD), undefined);
  t.is(digestMismatchIn(m("digest mismatch"), ""), undefined, "without an expected digest the catalog is not what failed");
});

test("a mismatch with the catalog's digest fails the entry's verification, found by id or by source_url", async (t) => {
  const clock = fakeClock(5_000);
  const store = await CatalogStore.open(await tempDir(t), clock);
  await store.create(model({ id: "qwen", sourceUrl: "hf:org/repo/m.gguf" }));
  const digests = new LoadDigests(store, clock);
  t.is(digests.expectedFor("hf:org/repo/m.gguf"), GOOD);
  t.is(digests.expectedFor("qwen"), GOOD);
  t.is(digests.expectedFor("hf:org/other"), "");

  t.is(await digests.loadFailed("hf:org/repo/m.gguf", GOOD, "r1", m("engine exited")), undefined, "not a mismatch: nothing recorded");
  t.is(store.get("qwen")!.verification, undefined);
  const recorded = await digests.loadFailed("hf:org/repo/m.gguf", GOOD, "r2", m(`digest mismatch: computed sha256:${OTHER}`));
  t.like(recorded!.verification, {
    status: VerificationStatus.VERIFICATION_STATUS_FAILED,
    reason: VerificationReason.VERIFICATION_REASON_DIGEST_MISMATCH,
    checkedMs: 5_000,
    computedDigest: `sha256:${OTHER}`,
  });
  t.regex(store.get("qwen")!.verification!.error!, /replica r2 loading hf:org\/repo\/m\.gguf/);
});

test("nothing is recorded for a model the catalog does not know, or when the load was not given the entry's digest", async (t) => {
  const store = await CatalogStore.open(await tempDir(t));
  await store.create(model({ id: "demo", digest: "sha256:deadbeef", sourceUrl: "hf:org/demo/m.gguf" }));
  const digests = new LoadDigests(store);
  t.is(await digests.loadFailed("hf:org/unknown/m.gguf", GOOD, "r1", m("digest mismatch")), undefined);
  t.is(await digests.loadFailed("hf:org/demo/m.gguf", "", "r1", m("digest mismatch against the hub's sha256")), undefined);
  t.is(await digests.loadFailed("hf:org/demo/m.gguf", GOOD, "r1", m("digest mismatch")), undefined, "a digest that is not the entry's");
  t.is(store.get("demo")!.verification, undefined);
});
