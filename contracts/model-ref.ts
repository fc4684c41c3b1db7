// The model_ref grammar of the public API, shared by core (catalog, reloads) and the sidecars (what to load).
import path from "node:path";

export type ModelRef =
  /** `revision` (a branch, tag or commit of the hub repository) is absent when the ref names none: the hub's default, `main`. */
  | { scheme: "hf"; org: string; repo: string; revision?: string; file?: string }
  | { scheme: "file"; path: string }
  | { scheme: "https"; url: string }
  | { scheme: "s3"; bucket: string; key: string }
  /** `reference` is a tag (`v1`) or a digest including its `@` (`@sha256:…`). */
  | { scheme: "oci"; registry: string; repository: string; reference: string };

const SUPPORTED_FORMS =
  "supported forms: hf:<org>/<repo>[@<revision>][/<file>], file:/abs/path, file:relative/path, a bare path " +
  "(models/x.gguf, ./x, /abs/x), https://<host>/<path>, s3://<bucket>/<key>, " +
  "oci://<registry>/<repository>:<tag> or oci://<registry>/<repository>@sha256:<hex>";

export class ModelRefError extends Error {
  constructor(
    message: string,
    readonly field: string = "/model_ref",
  ) {
    super(message);
    this.name = "ModelRefError";
  }
}

// Hugging Face org and repo names: letters, digits, '-', '_', '.', not starting with a dot.
const HF_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
// A branch, tag or commit id. Git allows "/" in branch names ("refs/pr/1"), but here "/" starts the file path.
const HF_REVISION = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const S3_BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const OCI_REGISTRY = /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$/;
// From the OCI distribution spec: lowercase path components, tags, and digests.
const OCI_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const OCI_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const OCI_DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Za-z0-9=_-]+$/;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;

export function parseModelRef(raw: string, field = "/model_ref"): ModelRef {
  const fail = (why: string): never => {
    throw new ModelRefError(`invalid model_ref ${JSON.stringify(raw)}: ${why}; ${SUPPORTED_FORMS}`, field);
  };
  if (typeof raw !== "string") return fail("not a string");
  if (raw.trim() === "") return fail("empty");
  if (raw !== raw.trim()) return fail("leading or trailing whitespace");
  // Control characters (NUL above all) would be truncated or misread by the OS and by logs.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(raw)) return fail("contains control characters");

  const scheme = SCHEME.exec(raw)?.[1];
  if (scheme === undefined) return { scheme: "file", path: raw };
  const rest = raw.slice(scheme.length + 1);
  switch (scheme) {
    case "hf":
      return parseHf(rest, fail);
    case "file":
      return parseFile(rest, fail);
    case "https":
      return parseHttps(raw, fail);
    case "s3":
      return parseS3(rest, fail);
    case "oci":
      return parseOci(rest, fail);
    default:
      return fail(`unsupported scheme "${scheme}:"`);
  }
}

type Fail = (why: string) => never;

function parseHf(rest: string, fail: Fail): ModelRef {
  const parts = rest.split("/");
  if (parts.length < 2) return fail("hf: needs <org>/<repo>");
  const [org, repoAndRevision, ...fileParts] = parts as [string, string, ...string[]];
  const at = repoAndRevision.indexOf("@");
  const repo = at < 0 ? repoAndRevision : repoAndRevision.slice(0, at);
  const revision = at < 0 ? undefined : repoAndRevision.slice(at + 1);
  if (!HF_NAME.test(org)) return fail(`bad hf org "${org}"`);
  if (!HF_NAME.test(repo)) return fail(`bad hf repo "${repo}"`);
  if (revision !== undefined && !HF_REVISION.test(revision)) {
    return fail(`bad hf revision "${revision}" (a branch, tag or commit: letters, digits, '.', '_', '-')`);
  }
  const base = revision === undefined ? { scheme: "hf" as const, org, repo } : { scheme: "hf" as const, org, repo, revision };
  if (fileParts.length === 0) return base;
  if (fileParts.some((p) => p === "" || p === "." || p === "..")) return fail("bad hf file path");
  return { ...base, file: fileParts.join("/") };
}

function parseFile(rest: string, fail: Fail): ModelRef {
  // Also accept the URL spelling file:///abs/path; a file URL with a host cannot be local.
  if (rest.startsWith("//")) {
    if (!rest.startsWith("///")) return fail("file:// URLs must have an empty host (file:///abs/path)");
    rest = rest.slice(2);
  }
  if (rest === "") return fail("file: needs a path");
  return { scheme: "file", path: rest };
}

function parseHttps(raw: string, fail: Fail): ModelRef {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail("not a valid https URL");
  }
  // WHATWG parsing forgives "https:///x" and backslashes; other clients would read such a
  // string differently, so insist on an explicit host and no backslashes.
  if (url.protocol !== "https:" || url.hostname === "" || !/^https:\/\/[^/?#]/.test(raw) || raw.includes("\\")) {
    return fail("not a valid https URL");
  }
  // source_url is stored and logged; credentials belong in configuration, not in the ref.
  if (url.username !== "" || url.password !== "") return fail("credentials in the URL are not allowed");
  return { scheme: "https", url: raw };
}

function parseS3(rest: string, fail: Fail): ModelRef {
  if (!rest.startsWith("//")) return fail("s3 refs look like s3://<bucket>/<key>");
  const body = rest.slice(2);
  const slash = body.indexOf("/");
  const bucket = slash < 0 ? body : body.slice(0, slash);
  const key = slash < 0 ? "" : body.slice(slash + 1);
  if (!S3_BUCKET.test(bucket)) return fail("s3: bad or missing bucket");
  if (key === "") return fail("s3: missing key");
  return { scheme: "s3", bucket, key };
}

function parseOci(rest: string, fail: Fail): ModelRef {
  if (!rest.startsWith("//")) return fail("oci refs look like oci://<registry>/<repository>:<tag>");
  const body = rest.slice(2);
  const slash = body.indexOf("/");
  if (slash < 0) return fail("oci: missing repository");
  const registry = body.slice(0, slash);
  const name = body.slice(slash + 1);
  if (!OCI_REGISTRY.test(registry)) return fail(`oci: bad registry "${registry}"`);

  let repository: string;
  let reference: string;
  const at = name.indexOf("@");
  if (at >= 0) {
    repository = name.slice(0, at);
    const digest = name.slice(at + 1);
    if (!OCI_DIGEST.test(digest)) return fail("oci: bad digest");
    if (digest.startsWith("sha256:") && !/^sha256:[0-9a-f]{64}$/.test(digest)) {
      return fail("oci: a sha256 digest has 64 lowercase hex digits");
    }
    reference = `@${digest}`;
  } else {
    const colon = name.lastIndexOf(":");
    // Without a tag or digest the artifact would float with "latest"; refuse to guess.
    if (colon < 0) return fail("oci: needs :<tag> or @<digest>");
    repository = name.slice(0, colon);
    reference = name.slice(colon + 1);
    if (!OCI_TAG.test(reference)) return fail(`oci: bad tag "${reference}"`);
  }
  if (repository === "" || !repository.split("/").every((c) => OCI_COMPONENT.test(c))) {
    return fail(`oci: bad repository "${repository}"`);
  }
  return { scheme: "oci", registry, repository, reference };
}

/** The canonical string for a ref; parseModelRef(formatModelRef(r)) deep-equals r. */
export function formatModelRef(ref: ModelRef): string {
  switch (ref.scheme) {
    case "hf":
      return `hf:${ref.org}/${ref.repo}${ref.revision === undefined ? "" : `@${ref.revision}`}${ref.file === undefined ? "" : `/${ref.file}`}`;
    case "file":
      // A path starting with "//" would read back as a file URL host.
      return ref.path.startsWith("//") ? `file://${ref.path}` : `file:${ref.path}`;
    case "https":
      return ref.url;
    case "s3":
      return `s3://${ref.bucket}/${ref.key}`;
    case "oci":
      return `oci://${ref.registry}/${ref.repository}${ref.reference.startsWith("@") ? "" : ":"}${ref.reference}`;
  }
}

/** Absolute local path of a file ref (relative ones resolved against baseDir); else undefined. */
export function localPathOf(ref: ModelRef, baseDir: string): string | undefined {
  if (ref.scheme !== "file") return undefined;
  return path.resolve(baseDir, ref.path);
}
