import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import type { LoadProgress } from "../../contracts/gen/llama_orch/v1/common.js";
import { VerificationReason, VerificationStatus, type CatalogModel, type Verification } from "../../contracts/gen/llama_orch/v1/catalog.js";
import { indexKeyOf, readIndexEntry } from "../../contracts/model-cache.js";
import { localPathOf, parseModelRef, type ModelRef } from "../../contracts/model-ref.js";
import { OUTSIDE_ROOTS_MESSAGE, outsideRoots, type ModelRoots } from "./model-roots.js";

const { VERIFICATION_STATUS_PENDING: PENDING, VERIFICATION_STATUS_PASSED: PASSED, VERIFICATION_STATUS_FAILED: FAILED } = VerificationStatus;
const {
  VERIFICATION_REASON_OK: OK,
  VERIFICATION_REASON_DIGEST_MISMATCH: DIGEST_MISMATCH,
  VERIFICATION_REASON_ARTIFACT_MISSING: ARTIFACT_MISSING,
  VERIFICATION_REASON_NOT_LOCAL: NOT_LOCAL,
  VERIFICATION_REASON_UNSUPPORTED_DIGEST: UNSUPPORTED_DIGEST,
} = VerificationReason;

export interface VerifyOptions {
  /** Relative file refs resolve against this. */
  baseDir: string;
  /** The only directories a source file (and a model cache entry) is read from: --model-roots and the model cache. */
  roots: ModelRoots;
  /** The entry's cache directory; `<modelDir>/model` is used when the source is not a local file. */
  modelDir: string;
  /**
   * The sidecars' model cache (`--model-cache`) and the hub endpoint its
   * entries were fetched from: an hf: or https:// source found there is
   * verified from the cached bytes.
   */
  modelCache?: { root: string; hubEndpoint: string };
  clock?: () => number;
  /** Told how far the hashing has got, once per chunk read (a number to keep, not work to do). */
  onProgress?: (progress: LoadProgress) => void;
}

/** Streams a file through sha256 so multi-GB weights never sit in memory; `onBytes` hears the running total read. */
export async function sha256File(file: string, onBytes?: (bytesRead: number) => void): Promise<string> {
  const hash = createHash("sha256");
  let read = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    read += chunk.length;
    onBytes?.(read);
  }
  return hash.digest("hex");
}

/** Progress in bytes of hashing `file`, `size` bytes long, started at `startedAt`. */
function hashingProgress(file: string, size: number, onProgress: (p: LoadProgress) => void, clock: () => number) {
  const startedAt = clock();
  const report = (bytesDone: number): void => {
    const seconds = (clock() - startedAt) / 1000;
    onProgress({
      phase: "verifying",
      bytesDone,
      bytesTotal: size,
      bytesPerSecond: seconds > 0 ? Math.round(bytesDone / seconds) : undefined,
      subject: path.basename(file),
    });
  };
  report(0);
  return report;
}

/**
 * Checks the entry's digest against its local artifact. Only a digest that was computed and
 * differs (or an artifact that should be local and is not) fails; what cannot be checked stays
 * "pending", and missing signatures or SBOM only warn.
 */
export async function verifyEntry(entry: CatalogModel, opts: VerifyOptions): Promise<Verification> {
  const warnings = provenanceWarnings(entry);
  // Read the clock when done: hashing large weights can take minutes.
  const result = (status: VerificationStatus, reason: VerificationReason, extra: Partial<Verification> = {}): Verification => ({
    status,
    reason,
    checkedMs: (opts.clock ?? Date.now)(),
    computedDigest: undefined,
    error: undefined,
    ...extra,
    warnings: [...(extra.warnings ?? []), ...warnings],
  });

  const located = await locate(entry, opts);
  // Refused before verification starts (assertReadableSource); here only if the file moved out since.
  if (located.kind === "outside") return result(PENDING, NOT_LOCAL, { warnings: [OUTSIDE_ROOTS_MESSAGE] });
  if (located.kind === "not_local") {
    return result(PENDING, NOT_LOCAL, { warnings: ["artifact is not local; digest not checked"] });
  }
  const file = located.path;
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    return result(FAILED, ARTIFACT_MISSING, { error: `artifact ${file} is not readable: ${(err as Error).message}` });
  }
  if (!info.isFile()) {
    return result(PENDING, UNSUPPORTED_DIGEST, { warnings: [`artifact ${file} is not a regular file; digest not checked`] });
  }
  const colon = entry.digest.indexOf(":");
  const algo = entry.digest.slice(0, colon);
  const expected = entry.digest.slice(colon + 1).toLowerCase();
  if (algo !== "sha256") {
    return result(PENDING, UNSUPPORTED_DIGEST, { warnings: [`digest algorithm "${algo}" is not supported; digest not checked`] });
  }

  let actual: string;
  try {
    const onBytes = opts.onProgress && hashingProgress(file, info.size, opts.onProgress, opts.clock ?? Date.now);
    actual = await sha256File(file, onBytes);
  } catch (err) {
    return result(FAILED, ARTIFACT_MISSING, { error: `artifact ${file} could not be read: ${(err as Error).message}` });
  }
  const computedDigest = `sha256:${actual}`;
  if (actual === expected) return result(PASSED, OK, { computedDigest });
  const hint = expected.length === 64 ? "" : ` (the expected digest has ${expected.length} hex digits; a sha256 has 64)`;
  return result(FAILED, DIGEST_MISMATCH, {
    computedDigest,
    error: `digest mismatch for ${file}: expected ${entry.digest}, computed ${computedDigest}${hint}`,
  });
}

/**
 * Refuses to verify an entry whose source is a local file outside the roots
 * (INVALID_PARAMS on /source_url, in the same words for every such path,
 * existing or not): checked before verification starts, so the client hears it.
 */
export async function assertReadableSource(entry: CatalogModel, opts: Pick<VerifyOptions, "baseDir" | "roots">): Promise<void> {
  const source = sourceOf(entry);
  const local = source && localPathOf(source, opts.baseDir);
  if (local !== undefined && (await opts.roots.admit(local)) === undefined) throw outsideRoots();
}

type Located = { kind: "local"; path: string } | { kind: "not_local" } | { kind: "outside" };

async function locate(entry: CatalogModel, opts: VerifyOptions): Promise<Located> {
  const source = sourceOf(entry);
  if (source !== undefined) {
    const local = localPathOf(source, opts.baseDir);
    if (local !== undefined) {
      const admitted = await opts.roots.admit(local);
      return admitted === undefined ? { kind: "outside" } : { kind: "local", path: admitted };
    }
    const cached = opts.modelCache && (await inModelCache(source, opts.modelCache));
    // The cache's index names where its bytes are; they are read only if that is inside a root too.
    const admitted = cached === undefined ? undefined : await opts.roots.admit(cached);
    if (admitted !== undefined) return { kind: "local", path: admitted };
  }
  const cached = path.join(opts.modelDir, "model");
  try {
    await stat(cached);
    return { kind: "local", path: cached };
  } catch {
    return { kind: "not_local" };
  }
}

function sourceOf(entry: CatalogModel): ModelRef | undefined {
  if (entry.sourceUrl === undefined) return undefined;
  try {
    return parseModelRef(entry.sourceUrl, "/source_url");
  } catch {
    // An unparseable source cannot be local; the entry's own cache directory may still hold it.
    return undefined;
  }
}

/**
 * Where the model cache keeps a fetched source: the file (its link to the
 * verified blob), or a whole repository's snapshot directory. Undefined when
 * the cache has no entry for it, or the entry's bytes are gone.
 */
async function inModelCache(source: ModelRef, cache: { root: string; hubEndpoint: string }): Promise<string | undefined> {
  const index = indexKeyOf(source, cache.hubEndpoint);
  if (index === undefined) return undefined;
  const entry = await readIndexEntry(cache.root, index.kind, index.key).catch(() => undefined);
  if (entry === undefined) return undefined;
  const where = path.join(cache.root, entry.kind === "file" ? entry.link : entry.dir);
  return (await stat(where).catch(() => undefined)) === undefined ? undefined : where;
}

function provenanceWarnings(entry: CatalogModel): string[] {
  const policy = entry.trustPolicy;
  const required = (yes: boolean | undefined) => (yes ? " (required by trust policy)" : "");
  const warnings: string[] = [];
  const sigs = entry.signatures;
  if (sigs.length === 0) warnings.push(`no signatures recorded${required(policy?.requireSignature)}`);
  else if (!sigs.some((s) => s.verified === true)) warnings.push(`no verified signature${required(policy?.requireSignature)}`);
  if (entry.sbom?.uri === undefined && entry.sbom?.digest === undefined) {
    warnings.push(`no SBOM recorded${required(policy?.requireSbom)}`);
  }
  return warnings;
}
