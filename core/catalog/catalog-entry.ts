import { ModelRefError, parseModelRef } from "./model-ref.js";

export type ModelState = "Active" | "Retired";

export interface Verification {
  status: "pending" | "passed" | "failed";
  checked_ms: number;
  computed_digest?: string;
  warnings: string[];
  error?: string;
}

/** Field names are the JSON names of the OpenAPI CatalogModel schema. */
export interface CatalogEntry {
  id: string;
  digest: string;
  source_url?: string;
  tags?: string[];
  manifests?: { digest?: string; size_bytes?: number }[];
  signatures?: { signer?: string; algo?: string; verified?: boolean; timestamp_ms?: number }[];
  sbom?: { uri?: string; digest?: string };
  trust_policy?: {
    mode?: "strict" | "permissive";
    allowed_registries?: string[];
    require_signature?: boolean;
    require_sbom?: boolean;
    ca_roots?: string[];
  };
  state: ModelState;
  /** Absolute epoch ms by which in-flight work on a Retired model must end (durable across restarts). */
  retire_deadline_ms?: number;
  state_changed_ms: number;
  created_ms: number;
  verification?: Verification;
}

export type NewCatalogEntry = Omit<CatalogEntry, "state" | "state_changed_ms" | "created_ms" | "verification" | "retire_deadline_ms">;

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

type Kind = "string" | "boolean" | "uint" | "strings" | readonly string[];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function checkValue(v: unknown, kind: Kind, field: string): void {
  const ok =
    kind === "string" ? typeof v === "string"
    : kind === "boolean" ? typeof v === "boolean"
    : kind === "uint" ? Number.isSafeInteger(v) && (v as number) >= 0
    : kind === "strings" ? Array.isArray(v) && v.every((s) => typeof s === "string")
    : kind.includes(v as string);
  if (!ok) {
    const want = typeof kind === "string" ? (kind === "uint" ? "a non-negative integer" : `a ${kind === "strings" ? "list of strings" : kind}`) : `one of ${kind.join(", ")}`;
    invalid(field, `${field} must be ${want}`);
  }
}

/** Copies only the listed fields (unknown ones are dropped, as the schema allows), type-checked. */
function pick(value: unknown, shape: Record<string, Kind>, field: string): Record<string, unknown> {
  if (!isObject(value)) return invalid(field, `${field} must be an object`);
  const out: Record<string, unknown> = {};
  for (const [key, kind] of Object.entries(shape)) {
    const v = value[key];
    if (v === undefined) continue;
    checkValue(v, kind, `${field}/${key}`);
    out[key] = Array.isArray(v) ? [...v] : v;
  }
  return out;
}

function pickList(value: unknown, shape: Record<string, Kind>, field: string): Record<string, unknown>[] {
  if (!Array.isArray(value)) return invalid(field, `${field} must be a list`);
  return value.map((item, i) => pick(item, shape, `${field}/${i}`));
}

const MANIFEST = { digest: "string", size_bytes: "uint" } as const;
const SIGNATURE = { signer: "string", algo: "string", verified: "boolean", timestamp_ms: "uint" } as const;
const SBOM = { uri: "string", digest: "string" } as const;
const TRUST_POLICY = {
  mode: ["strict", "permissive"],
  allowed_registries: "strings",
  require_signature: "boolean",
  require_sbom: "boolean",
  ca_roots: "strings",
} as const;

/**
 * Validates and copies the registration fields. `strictSourceUrl` is off when loading the
 * index so that a ref accepted by an older build never makes the catalog unopenable.
 */
export function normalizeRegistration(input: unknown, strictSourceUrl = true): NewCatalogEntry {
  if (!isObject(input)) return invalid("", "a catalog entry must be an object");
  const { id, digest } = input;
  if (!isValidId(id)) {
    return invalid("/id", `/id must match ${ID.source} without ".." (got ${JSON.stringify(id)})`);
  }
  if (typeof digest !== "string" || !DIGEST.test(digest)) {
    return invalid("/digest", `/digest must look like sha256:<hex> (<algo>:<8-128 lowercase hex>), got ${JSON.stringify(digest)}`);
  }
  const out: NewCatalogEntry = { id, digest };
  if (input.source_url !== undefined) {
    checkValue(input.source_url, "string", "/source_url");
    if (strictSourceUrl) {
      try {
        parseModelRef(input.source_url as string, "/source_url");
      } catch (err) {
        if (err instanceof ModelRefError) invalid(err.field, err.message);
        throw err;
      }
    }
    out.source_url = input.source_url as string;
  }
  if (input.tags !== undefined) {
    checkValue(input.tags, "strings", "/tags");
    out.tags = [...(input.tags as string[])];
  }
  if (input.manifests !== undefined) out.manifests = pickList(input.manifests, MANIFEST, "/manifests");
  if (input.signatures !== undefined) out.signatures = pickList(input.signatures, SIGNATURE, "/signatures");
  if (input.sbom !== undefined) out.sbom = pick(input.sbom, SBOM, "/sbom");
  if (input.trust_policy !== undefined) out.trust_policy = pick(input.trust_policy, TRUST_POLICY, "/trust_policy");
  return out;
}

export function checkVerification(v: unknown, field = "/verification"): Verification {
  if (!isObject(v)) return invalid(field, `${field} must be an object`);
  checkValue(v.status, ["pending", "passed", "failed"], `${field}/status`);
  checkValue(v.checked_ms, "uint", `${field}/checked_ms`);
  checkValue(v.warnings, "strings", `${field}/warnings`);
  if (v.computed_digest !== undefined) checkValue(v.computed_digest, "string", `${field}/computed_digest`);
  if (v.error !== undefined) checkValue(v.error, "string", `${field}/error`);
  // A JSON round trip keeps what is in memory identical to what a restart reads back.
  return JSON.parse(JSON.stringify(v)) as Verification;
}

/** Validates an entry read back from the index file. */
export function checkStoredEntry(value: unknown, key: string): CatalogEntry {
  const base = normalizeRegistration(value, false);
  const v = value as Record<string, unknown>;
  if (base.id !== key) invalid("/id", `entry stored under "${key}" has id "${base.id}"`);
  checkValue(v.state, ["Active", "Retired"], "/state");
  checkValue(v.created_ms, "uint", "/created_ms");
  checkValue(v.state_changed_ms, "uint", "/state_changed_ms");
  const entry: CatalogEntry = {
    ...base,
    state: v.state as ModelState,
    state_changed_ms: v.state_changed_ms as number,
    created_ms: v.created_ms as number,
  };
  if (v.retire_deadline_ms !== undefined) {
    checkValue(v.retire_deadline_ms, "uint", "/retire_deadline_ms");
    entry.retire_deadline_ms = v.retire_deadline_ms as number;
  }
  if (v.verification !== undefined) entry.verification = checkVerification(v.verification);
  return entry;
}

export function cloneEntry(e: CatalogEntry): CatalogEntry {
  return structuredClone(e);
}
