import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { CatalogEntry, Verification } from "./catalog-entry.js";
import { localPathOf, parseModelRef } from "./model-ref.js";

export type VerifyReason = "ok" | "digest_mismatch" | "artifact_missing" | "not_local" | "unsupported_digest";
export type VerifyResult = Verification & { reason: VerifyReason };

export interface VerifyOptions {
  /** Relative file refs resolve against this. */
  baseDir: string;
  /** The entry's cache directory; `<modelDir>/model` is used when the source is not a local file. */
  modelDir: string;
  clock?: () => number;
}

/** Streams a file through sha256 so multi-GB weights never sit in memory. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), hash);
  return hash.digest("hex");
}

/**
 * Checks the entry's digest against its local artifact. Only a digest that was computed and
 * differs (or an artifact that should be local and is not) fails; what cannot be checked stays
 * "pending", and missing signatures or SBOM only warn.
 */
export async function verifyEntry(entry: CatalogEntry, opts: VerifyOptions): Promise<VerifyResult> {
  const warnings = provenanceWarnings(entry);
  // Read the clock when done: hashing large weights can take minutes.
  const result = (status: Verification["status"], reason: VerifyReason, extra: Partial<Verification> = {}): VerifyResult => ({
    status,
    reason,
    checked_ms: (opts.clock ?? Date.now)(),
    ...extra,
    warnings: [...(extra.warnings ?? []), ...warnings],
  });

  const located = await locate(entry, opts);
  if (located.kind === "not_local") {
    return result("pending", "not_local", { warnings: ["artifact is not local; digest not checked"] });
  }
  const file = located.path;
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    return result("failed", "artifact_missing", { error: `artifact ${file} is not readable: ${(err as Error).message}` });
  }
  if (!info.isFile()) {
    return result("pending", "unsupported_digest", { warnings: [`artifact ${file} is not a regular file; digest not checked`] });
  }
  const colon = entry.digest.indexOf(":");
  const algo = entry.digest.slice(0, colon);
  const expected = entry.digest.slice(colon + 1).toLowerCase();
  if (algo !== "sha256") {
    return result("pending", "unsupported_digest", { warnings: [`digest algorithm "${algo}" is not supported; digest not checked`] });
  }

  let actual: string;
  try {
    actual = await sha256File(file);
  } catch (err) {
    return result("failed", "artifact_missing", { error: `artifact ${file} could not be read: ${(err as Error).message}` });
  }
  const computed_digest = `sha256:${actual}`;
  if (actual === expected) return result("passed", "ok", { computed_digest });
  const hint = expected.length === 64 ? "" : ` (the expected digest has ${expected.length} hex digits; a sha256 has 64)`;
  return result("failed", "digest_mismatch", {
    computed_digest,
    error: `digest mismatch for ${file}: expected ${entry.digest}, computed ${computed_digest}${hint}`,
  });
}

type Located = { kind: "local"; path: string } | { kind: "not_local" };

async function locate(entry: CatalogEntry, opts: VerifyOptions): Promise<Located> {
  if (entry.source_url !== undefined) {
    try {
      const local = localPathOf(parseModelRef(entry.source_url, "/source_url"), opts.baseDir);
      if (local !== undefined) return { kind: "local", path: local };
    } catch {
      // An unparseable source cannot be local; fall through to the cache.
    }
  }
  const cached = path.join(opts.modelDir, "model");
  try {
    await stat(cached);
    return { kind: "local", path: cached };
  } catch {
    return { kind: "not_local" };
  }
}

function provenanceWarnings(entry: CatalogEntry): string[] {
  const policy = entry.trust_policy ?? {};
  const required = (yes: boolean | undefined) => (yes ? " (required by trust policy)" : "");
  const warnings: string[] = [];
  const sigs = entry.signatures ?? [];
  if (sigs.length === 0) warnings.push(`no signatures recorded${required(policy.require_signature)}`);
  else if (!sigs.some((s) => s.verified === true)) warnings.push(`no verified signature${required(policy.require_signature)}`);
  if (entry.sbom?.uri === undefined && entry.sbom?.digest === undefined) {
    warnings.push(`no SBOM recorded${required(policy.require_sbom)}`);
  }
  return warnings;
}
