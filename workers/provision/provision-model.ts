// provisionModel: a model_ref in, local files out, for every engine. hf: and
// https:// refs are fetched into the model cache (once per host: callers in
// one process share a flight, processes share the cache's locks); file: refs
// and relative paths are used where they are; s3:// and oci:// are refused
// at once. Every error is a ProvisionError, and none carries the token.
import path from "node:path";
import { urlKey } from "../../contracts/model-cache.js";
import { formatModelRef, ModelRefError, parseModelRef, type ModelRef } from "../../contracts/model-ref.js";
import { fetchFile, resultOf } from "./cached-fetch.js";
import { hashedFiles, hashedFile, localModel } from "./local-files.js";
import { manifestDigest } from "./file-hash.js";
import { authOf, provisionHubFile, provisionHubRepo } from "./hub-provision.js";
import { defaultModelCacheDir, hubSettings, type HubSettings } from "./hub-settings.js";
import { ModelCache } from "./model-cache.js";
import { ProgressReporter, type ProgressListener } from "./progress.js";
import { displayUrl, ProvisionError, redactedError } from "./provision-error.js";
import type { ProvisionedModel, ProvisionOptions, Run } from "./provision-types.js";
import { SingleFlight } from "./single-flight.js";

export type { ProvisionedModel, ProvisionOptions, ProvisionSource } from "./provision-types.js";

const flights = new SingleFlight<ProvisionedModel>();

/** Turns `ref` into local files; see ProvisionOptions and ProvisionedModel. */
export async function provisionModel(ref: string | ModelRef, options: ProvisionOptions = {}): Promise<ProvisionedModel> {
  const env = options.env ?? process.env;
  const secrets: string[] = [];
  try {
    const parsed = parse(ref);
    if (parsed.scheme === "s3" || parsed.scheme === "oci") {
      throw new ProvisionError(
        "unsupported_scheme",
        `${parsed.scheme}:// model refs are not supported yet: fetch the files yourself and use file:/path, or use an hf: or https:// ref`,
      );
    }
    const expected = expectedDigestOf(options.expectedSha256);
    const cacheDir = path.resolve(options.cacheDir ?? defaultModelCacheDir(env));
    const settings = parsed.scheme === "file" ? undefined : await hubSettings(env);
    if (settings?.token !== undefined) secrets.push(settings.token);
    const key = [cacheDir, flightKeyOf(parsed, settings, options.baseDir), expected ?? ""].join("\0");
    const result = await flights.join(
      key,
      (signal, listener) => provision(parsed, options, { cacheDir, settings, expected, signal, listener }),
      options,
    );
    // A caller that joined another's flight may expect another digest.
    if (expected !== undefined && result.sha256 !== expected) {
      throw new ProvisionError("digest_mismatch", `${formatModelRef(parsed)}: sha256 ${result.sha256} is not the expected ${expected}`);
    }
    return result;
  } catch (err) {
    throw redactedError(err, secrets);
  }
}

interface Prepared {
  cacheDir: string;
  settings: HubSettings | undefined;
  expected: string | undefined;
  signal: AbortSignal;
  listener: ProgressListener;
}

async function provision(
  ref: Exclude<ModelRef, { scheme: "s3" | "oci" }>,
  options: ProvisionOptions,
  prepared: Prepared,
): Promise<ProvisionedModel> {
  const cache = new ModelCache(prepared.cacheDir);
  const reporter = new ProgressReporter(prepared.listener, options.progressIntervalMs);
  const run: Run = {
    cache,
    settings: prepared.settings,
    reporter,
    signal: prepared.signal,
    http: { signal: prepared.signal, ca: options.ca, idleTimeoutMs: options.idleTimeoutMs },
    retries: options.retries ?? 4,
    retryBaseDelayMs: options.retryBaseDelayMs ?? 1_000,
    lockPollMs: options.lockPollMs ?? 200,
    statfs: options.statfs,
    expectedSha256: prepared.expected,
  };
  let result: ProvisionedModel;
  if (ref.scheme === "file") {
    // A local model must load even when the cache (which only remembers its hash here) cannot be created.
    await cache.open().catch(() => undefined);
    result = await provisionLocal(run, path.resolve(options.baseDir ?? process.cwd(), ref.path));
  } else {
    await cache.open();
    if (ref.scheme === "https") result = await provisionUrl(run, ref.url);
    else if (ref.file !== undefined) result = await provisionHubFile(run, { ...ref, file: ref.file });
    else result = await provisionHubRepo(run, ref);
  }
  reporter.phase("done", { bytesDone: result.sizeBytes, bytesTotal: result.sizeBytes, file: undefined });
  return result;
}

async function provisionLocal(run: Run, absolute: string): Promise<ProvisionedModel> {
  const found = await localModel(absolute);
  const expected = run.expectedSha256;
  if (found.kind === "file") {
    run.reporter.phase("verifying", { file: absolute, bytesDone: 0, bytesTotal: found.sizeBytes });
    const { sha256, sizeBytes } = await hashedFile(run.cache, absolute, (done) => run.reporter.bytes(done, 0, found.sizeBytes));
    if (expected !== undefined && sha256 !== expected)
      throw new ProvisionError("digest_mismatch", `${absolute}: sha256 ${sha256} is not the expected ${expected}`);
    return { path: absolute, sha256, sizeBytes, source: "local", verified: expected !== undefined };
  }
  const total = found.files.reduce((sum, f) => sum + f.sizeBytes, 0);
  const offsets = new Map<string, number>();
  let offset = 0;
  for (const f of found.files) {
    offsets.set(f.path, offset);
    offset += f.sizeBytes;
  }
  run.reporter.phase("verifying", { file: absolute, bytesDone: 0, bytesTotal: total });
  const files = await hashedFiles(run.cache, absolute, found.files, (file, done) =>
    run.reporter.bytes(offsets.get(file)! + done, 0, total),
  );
  const sha256 = manifestDigest(files);
  if (expected !== undefined && sha256 !== expected)
    throw new ProvisionError("digest_mismatch", `${absolute}: the directory's digest ${sha256} is not the expected ${expected}`);
  return { path: absolute, sha256, sizeBytes: total, files, source: "local", verified: expected !== undefined };
}

async function provisionUrl(run: Run, url: string): Promise<ProvisionedModel> {
  const key = urlKey(url);
  const label = displayUrl(url);
  const origin = new URL(url).origin;
  // The token goes to the hub's own host only; an https:// ref to the hub's resolve URL is the hub's.
  const hubOrigin = new URL(run.settings!.endpoint).origin;
  const hub = origin === hubOrigin ? { origin, auth: authOf(run.settings!) } : undefined;
  run.reporter.phase("resolving", { file: label });
  const got = await fetchFile(run, {
    key,
    url,
    label,
    file: label,
    source: label,
    ...(hub === undefined ? {} : { hub }),
    expectedSha256: run.expectedSha256,
    linkPath: () => path.join(run.cache.urlSnapshotDir(key), fileNameOf(url)),
  });
  return resultOf(got);
}

/** The last path segment of a URL, as a safe file name ("model.gguf"); engines (and people) look at the extension. */
function fileNameOf(url: string): string {
  let name: string;
  try {
    name = decodeURIComponent(new URL(url).pathname.split("/").pop() ?? "");
  } catch {
    name = "";
  }
  name = name.replace(/[/\\\0]/g, "_");
  return name === "" || name === "." || name === ".." ? "download" : name;
}

function parse(ref: string | ModelRef): ModelRef {
  if (typeof ref !== "string") return ref;
  try {
    return parseModelRef(ref);
  } catch (err) {
    if (err instanceof ModelRefError) throw new ProvisionError("invalid_ref", err.message);
    throw err;
  }
}

/** The catalog's `sha256:<hex>` or a bare hex digest, lowercased; anything else is refused. */
function expectedDigestOf(digest: string | undefined): string | undefined {
  if (digest === undefined) return undefined;
  const hex = digest.startsWith("sha256:") ? digest.slice("sha256:".length) : digest;
  if (!/^[0-9a-fA-F]{64}$/.test(hex))
    throw new ProvisionError("config", `expectedSha256 must be 64 hex digits (optionally after "sha256:"), got ${JSON.stringify(digest)}`);
  return hex.toLowerCase();
}

/** What makes two provisionings the same work: the ref as it will be fetched (endpoint included), or the local path. */
function flightKeyOf(ref: ModelRef, settings: HubSettings | undefined, baseDir: string | undefined): string {
  if (ref.scheme === "file") return `file ${path.resolve(baseDir ?? process.cwd(), ref.path)}`;
  if (ref.scheme === "https") return `url ${ref.url}`;
  return `${settings?.endpoint ?? ""} ${formatModelRef(ref)}`;
}
