import { createHash } from "node:crypto";
import { Artifact, ArtifactKind } from "../../contracts/gen/llama_orch/v1/artifact.js";
import { publicEnumNames } from "../../contracts/public-enum-names.js";
import { publicJson, PublicJsonError, type JsonObject } from "../../contracts/public-json.js";
import { canonicalJson, CanonicalJsonError } from "./canonical-json.js";

/**
 * The part of an Artifact (generated from artifact.proto) its id is derived
 * from, and the checks it must pass beyond its field types. Kept apart from
 * storage so the same rules vet what callers send and what is read back from
 * disk.
 */

/** Public names of the kinds an artifact may have. */
export const ARTIFACT_KINDS: readonly string[] = publicEnumNames("llama_orch.v1.ArtifactKind").names;

/** The members the id is the hash of, in the public JSON; id, digest, created_ms and lineage are the store's. */
const HASHED_MEMBERS = ["kind", "content", "tags", "parent", "metadata"] as const;

const ID_PATTERN = /^[0-9a-f]{64}$/;

export function isArtifactId(id: unknown): id is string {
  return typeof id === "string" && ID_PATTERN.test(id);
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

// Stored files hold an artifact's public JSON: the form its id is hashed from.
const artifactJson = publicJson<Artifact>("llama_orch.v1.Artifact");

/** An artifact from its public JSON (a stored file, say); what the codec refuses is invalid, at its field. */
export function artifactFromJson(json: unknown): Artifact {
  try {
    return artifactJson.decode(json);
  } catch (err) {
    if (err instanceof PublicJsonError) throw new ArtifactError("invalid", err.message, err.field);
    throw err;
  }
}

/** The public JSON of a stored artifact as its file holds it: without lineage, which is derived on read. */
export function recordJson(artifact: Artifact): JsonObject {
  const { lineage: _, ...record } = artifactJson.encode(artifact);
  return record;
}

const isKind = (kind: ArtifactKind) =>
  kind > ArtifactKind.ARTIFACT_KIND_UNSPECIFIED && publicEnumNames("llama_orch.v1.ArtifactKind").name(kind) !== undefined;

/** Checks the hashed members and copies only them; anything else the caller set (id, created_ms, …) is not part of the content. */
export function toDocument(input: Artifact): Artifact {
  const { kind, content, tags, parent, metadata } = input;
  if (!isKind(kind)) throw new ArtifactError("invalid", `kind must be one of ${ARTIFACT_KINDS.join(", ")}`, "/kind");
  if (!isPlainObject(content)) throw new ArtifactError("invalid", "content must be a JSON object", "/content");
  if (tags !== undefined) {
    if (!Array.isArray(tags)) throw new ArtifactError("invalid", "tags must be an array of strings", "/tags");
    const bad = tags.findIndex((t) => typeof t !== "string");
    if (bad >= 0) throw new ArtifactError("invalid", "tags must be an array of strings", `/tags/${bad}`);
  }
  if (parent !== undefined && !isArtifactId(parent)) {
    throw new ArtifactError("invalid", "parent must be an artifact id (64 lowercase hex characters)", "/parent");
  }
  if (metadata !== undefined && !isPlainObject(metadata)) throw new ArtifactError("invalid", "metadata must be a JSON object", "/metadata");
  return Artifact.fromPartial({ kind, content, tags, parent, metadata });
}

/** The canonical JSON the id is hashed from; a value JSON cannot carry is the caller's mistake, reported where it is. */
export function encodeDocument(doc: Artifact): string {
  try {
    const json = artifactJson.encode(doc);
    return canonicalJson(Object.fromEntries(HASHED_MEMBERS.filter((m) => m in json).map((m) => [m, json[m]])));
  } catch (err) {
    if (err instanceof PublicJsonError) throw new ArtifactError("invalid", err.message, err.field || undefined);
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
