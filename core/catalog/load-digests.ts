import { Verification, VerificationReason, VerificationStatus, type CatalogModel } from "../../contracts/gen/llama_orch/v1/catalog.js";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { CatalogStore } from "./catalog-store.js";

/** The only digest a replica can check a model's bytes against (LoadModelRequest.expected_digest). */
const FULL_SHA256 = /^sha256:[0-9a-f]{64}$/;

/**
 * The digest a replica loading the entry's model must match: the catalog's,
 * when it is a full sha256. The catalog also accepts truncated digests
 * (`sha256:deadbeef`, as in the OpenAPI examples) and other algorithms; no
 * bytes can match those, so nothing is asked for and the source's own digest
 * (the hub's LFS sha256) is what the replica checks.
 */
export function expectedDigestOf(entry: CatalogModel | undefined): string {
  return entry !== undefined && FULL_SHA256.test(entry.digest) ? entry.digest : "";
}

/** A replica's refusal of a LoadModel: its sentence, and the typed reason it attached, if any. */
export interface LoadFailure {
  message: string;
  code?: ErrorCode;
}

// Sidecars attach UNTRUSTED_ARTIFACT to a load whose bytes are not the
// expected ones; the sentence is the fallback ("digest mismatch", or the
// provisioner's "sha256 <hex> is not the expected <hex>").
const MISMATCH = /digest[ _]mismatch/i;
const HASHED = /(?:computed|sha256)[: ]\s*(?:sha256:)?([0-9a-f]{64})\b/gi;

/**
 * Whether a replica's load failure says the model's bytes are not the
 * `expected` digest, and, when the bytes were hashed, their digest: the
 * sha256 the sentence names as computed (`computed sha256:<hex>`,
 * `sha256 <hex>`) that is not the expected one. Undefined for any other
 * failure, and when nothing was expected (the catalog was not what failed).
 */
export function digestMismatchIn(failure: LoadFailure, expected: string): { computedDigest?: string } | undefined {
  if (expected === "") return undefined;
  const { message } = failure;
  const lower = message.toLowerCase();
  const said =
    failure.code === ErrorCode.ERROR_CODE_UNTRUSTED_ARTIFACT ||
    MISMATCH.test(message) ||
    lower.includes(`is not the expected ${expected.slice("sha256:".length)}`) ||
    lower.includes(`is not the expected ${expected}`);
  if (!said) return undefined;
  for (const [, hex] of message.matchAll(HASHED)) {
    const digest = `sha256:${hex!.toLowerCase()}`;
    if (digest !== expected) return { computedDigest: digest };
  }
  return {};
}

/**
 * What a model load asks of the catalog and tells it: the digest a replica
 * must match, and a mismatch a replica found, recorded on the entry as a
 * failed verification so that tasks for the model get UNTRUSTED_ARTIFACT.
 * Entries are found as admission finds them: by id, else by source_url.
 */
export class LoadDigests {
  constructor(
    private readonly store: CatalogStore,
    private readonly clock: () => number = Date.now,
  ) {}

  expectedFor(modelRef: string): string {
    return expectedDigestOf(this.store.lookup(modelRef));
  }

  /**
   * Records the failure when it is a mismatch with the digest the load was
   * given; the entry as recorded, or undefined when there was nothing to record.
   */
  async loadFailed(modelRef: string, expected: string, replicaId: string, failure: LoadFailure): Promise<CatalogModel | undefined> {
    const mismatch = digestMismatchIn(failure, expected);
    const entry = mismatch && this.store.lookup(modelRef);
    if (!mismatch || !entry || entry.digest !== expected) return undefined;
    const verification = Verification.fromPartial({
      status: VerificationStatus.VERIFICATION_STATUS_FAILED,
      reason: VerificationReason.VERIFICATION_REASON_DIGEST_MISMATCH,
      checkedMs: this.clock(),
      computedDigest: mismatch.computedDigest,
      error: `digest mismatch: replica ${replicaId} loading ${modelRef} found bytes that are not ${expected}: ${failure.message}`,
    });
    return this.store.recordVerification(entry.id, verification);
  }
}
