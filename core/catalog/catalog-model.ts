import { CatalogModel, CatalogModelState, VerificationStatus, type Verification } from "../../contracts/gen/llama_orch/v1/catalog.js";
import { publicEnumNames } from "../../contracts/public-enum-names.js";
import { publicJson, PublicJsonError } from "../../contracts/public-json.js";
import { ModelRefError, parseModelRef } from "../../contracts/model-ref.js";

/**
 * The rules a CatalogModel (generated from catalog.proto) must pass beyond its
 * field types, which the edge's OpenAPI check and gRPC itself already hold
 * callers to: the id becomes a directory name, the digest must be usable, the
 * source must parse. Kept apart from storage so the same rules vet what
 * callers send and what is read back from the index.
 */

export class CatalogError extends Error {
  constructor(
    readonly kind: "not_found" | "conflict" | "invalid",
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = "CatalogError";
  }
}

// Ids become directory names under root/models, so no '/', no leading dot, no "..".
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
// Loose on purpose: the OpenAPI examples use truncated digests such as sha256:deadbeef.
const DIGEST = /^[a-z0-9]+:[0-9a-f]{8,128}$/;

export function isValidId(id: unknown): id is string {
  return typeof id === "string" && ID.test(id) && !id.includes("..");
}

const invalid = (field: string, message: string): never => {
  throw new CatalogError("invalid", message, field);
};

const states = () => publicEnumNames("llama_orch.v1.CatalogModelState");
export const stateName = (state: CatalogModelState): string => states().name(state) ?? String(state);
export const isModelState = (state: CatalogModelState): boolean =>
  state === CatalogModelState.CATALOG_MODEL_STATE_ACTIVE || state === CatalogModelState.CATALOG_MODEL_STATE_RETIRED;

/**
 * Refuses a model whose id, digest or source_url breaks the rules above.
 * `strictSourceUrl` is off when loading the index so that a ref accepted by an
 * older build never makes the catalog unopenable.
 */
export function checkRegistration(m: CatalogModel, strictSourceUrl = true): void {
  if (!isValidId(m.id)) invalid("/id", `/id must match ${ID.source} without ".." (got ${JSON.stringify(m.id)})`);
  if (typeof m.digest !== "string" || !DIGEST.test(m.digest)) {
    invalid("/digest", `/digest must look like sha256:<hex> (<algo>:<8-128 lowercase hex>), got ${JSON.stringify(m.digest)}`);
  }
  if (m.sourceUrl === undefined || !strictSourceUrl) return;
  try {
    parseModelRef(m.sourceUrl, "/source_url");
  } catch (err) {
    if (err instanceof ModelRefError) invalid(err.field, err.message);
    throw err;
  }
}

/** What a client registers, checked and copied; every field the server keeps starts from its default. */
export function registration(input: CatalogModel): CatalogModel {
  checkRegistration(input);
  const { id, digest, sourceUrl, tags, manifests, signatures, sbom, trustPolicy } = input;
  return CatalogModel.fromPartial({ id, digest, sourceUrl, tags, manifests, signatures, sbom, trustPolicy });
}

/** A copy of a verification outcome, refused when it has no status. */
export function checkVerification(v: Verification): Verification {
  const known = [
    VerificationStatus.VERIFICATION_STATUS_PENDING,
    VerificationStatus.VERIFICATION_STATUS_PASSED,
    VerificationStatus.VERIFICATION_STATUS_FAILED,
  ];
  if (!known.includes(v.status)) invalid("/verification/status", `/verification/status must be pending, passed or failed, got ${v.status}`);
  return structuredClone(v);
}

// The index file holds each entry as its public JSON: the same shape the HTTP API serves.
const catalogModelJson = publicJson<CatalogModel>("llama_orch.v1.CatalogModel");

export const modelToJson = (m: CatalogModel) => catalogModelJson.encode(m);

/** An entry read back from the index file, held to the same rules as a registration. */
export function modelFromIndex(value: unknown, key: string): CatalogModel {
  let entry: CatalogModel;
  try {
    entry = catalogModelJson.decode(value);
  } catch (err) {
    if (err instanceof PublicJsonError) return invalid(err.field, err.message);
    throw err;
  }
  checkRegistration(entry, false);
  if (entry.id !== key) invalid("/id", `entry stored under "${key}" has id "${entry.id}"`);
  if (!isModelState(entry.state)) invalid("/state", `/state must be Active or Retired, got ${stateName(entry.state)}`);
  if (entry.verification) checkVerification(entry.verification);
  return entry;
}

export function cloneModel(m: CatalogModel): CatalogModel {
  return structuredClone(m);
}
