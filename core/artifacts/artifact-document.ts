import { createHash } from "node:crypto";
import { canonicalJson, CanonicalJsonError } from "./canonical-json.js";

/**
 * The part of an artifact its id is derived from, and the checks it must pass.
 * Kept apart from storage so the same rules vet what callers send and what is
 * read back from disk.
 */

export const ARTIFACT_KINDS = ["plan", "summary", "diff", "trace", "other"] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

const ID_PATTERN = /^[0-9a-f]{64}$/;

export function isArtifactId(id: unknown): id is string {
  return typeof id === "string" && ID_PATTERN.test(id);
}

export interface ArtifactInput {
  kind: ArtifactKind;
  content: Record<string, unknown>;
  tags?: string[];
  parent?: string;
  metadata?: Record<string, unknown>;
}

export class ArtifactError extends Error {
  constructor(
    readonly kind: "not_found" | "invalid" | "too_large",
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = "ArtifactError";
  }
}

/** Picks and checks the hashed members; anything else the caller sent (id, created_ms, …) is not part of the content. */
export function toDocument(input: unknown): ArtifactInput {
  if (!isPlainObject(input)) throw new ArtifactError("invalid", "an artifact must be a JSON object");
  const { kind, content, tags, parent, metadata } = input;
  if (typeof kind !== "string" || !(ARTIFACT_KINDS as readonly string[]).includes(kind)) {
    throw new ArtifactError("invalid", `kind must be one of ${ARTIFACT_KINDS.join(", ")}`, "/kind");
  }
  if (!isPlainObject(content)) throw new ArtifactError("invalid", "content must be a JSON object", "/content");
  const doc: ArtifactInput = { kind: kind as ArtifactKind, content };
  if (tags !== undefined) {
    if (!Array.isArray(tags)) throw new ArtifactError("invalid", "tags must be an array of strings", "/tags");
    const bad = tags.findIndex((t) => typeof t !== "string");
    if (bad >= 0) throw new ArtifactError("invalid", "tags must be an array of strings", `/tags/${bad}`);
    doc.tags = tags as string[];
  }
  if (parent !== undefined) {
    if (!isArtifactId(parent)) {
      throw new ArtifactError("invalid", "parent must be an artifact id (64 lowercase hex characters)", "/parent");
    }
    doc.parent = parent;
  }
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) throw new ArtifactError("invalid", "metadata must be a JSON object", "/metadata");
    doc.metadata = metadata;
  }
  return doc;
}

/** The canonical JSON the id is hashed from; a value JSON cannot carry is the caller's mistake, reported where it is. */
export function encodeDocument(doc: ArtifactInput): string {
  try {
    return canonicalJson(doc);
  } catch (err) {
    if (err instanceof CanonicalJsonError) throw new ArtifactError("invalid", err.message, err.pointer);
    // Only a stack overflow lands here: nesting deeper than any real document.
    if (err instanceof RangeError) throw new ArtifactError("invalid", "the artifact is nested too deeply");
    throw err;
  }
}

export function idOf(canonical: string): string {
  return createHash("sha256").update(canonical, "utf8").digest("hex");
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
