import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { ensureDir, errorCode, publishFile, sweepTempFiles } from "../../contracts/runtime/atomic-file.js";
import type { Artifact } from "../../contracts/gen/llama_orch/v1/artifact.js";
import {
  ArtifactError,
  artifactFromJson,
  encodeDocument,
  idOf,
  isArtifactId,
  isPlainObject,
  recordJson,
  toDocument,
} from "./artifact-document.js";
import { canonicalJson } from "./canonical-json.js";
import { SegmentLog, type SegmentLogOptions } from "./segment-log.js";

export { ARTIFACT_KINDS, ArtifactError, isArtifactId } from "./artifact-document.js";

export const DEFAULT_MAX_ARTIFACT_BYTES = 1024 * 1024;
export const MAX_LINEAGE_DEPTH = 1000;
/** Parent pointers are part of the hashed content, so they never change and are safe to cache. */
const PARENT_CACHE_LIMIT = 10_000;

export interface ArtifactStoreOptions {
  /** Largest canonical JSON accepted, in bytes. */
  maxBytes?: number;
  clock?: () => number;
  /** The transcript log's segments and retention (under `<root>/transcripts`). */
  transcripts?: SegmentLogOptions;
}

/** What one file holds: an Artifact whose lineage is left empty, since it is derived on read, never stored, so it cannot go stale. */
type ArtifactRecord = Artifact;

class Corrupt {
  constructor(readonly reason: string) {}
}

/**
 * A durable, content-addressed store of JSON artifacts: one file per artifact
 * at `<root>/<id[0..2]>/<id>.json`, holding its public JSON. The id is the
 * sha256 of the canonical JSON of {kind, content, tags, parent, metadata}, so
 * storing the same thing twice is a no-op that returns the first copy, and
 * every read can check that the file still matches its name. Transcripts,
 * one per finished task, go to an append-only log instead (segment-log.ts):
 * the same content addressing and checks, without a file and two fsyncs each.
 */
export class ArtifactStore {
  private readonly parents = new Map<string, string | null>();

  private constructor(
    private readonly root: string,
    readonly maxBytes: number,
    private readonly clock: () => number,
    private readonly transcripts: SegmentLog,
  ) {}

  static async open(root: string, options: ArtifactStoreOptions = {}): Promise<ArtifactStore> {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_ARTIFACT_BYTES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
      throw new RangeError(`maxBytes must be a positive integer, got ${maxBytes}`);
    }
    const absolute = path.resolve(root);
    await ensureDir(absolute);
    const shards = (await readdir(absolute)).filter((name) => /^[0-9a-f]{2}$/.test(name));
    await sweepTempFiles(shards.map((name) => path.join(absolute, name)));
    const clock = options.clock ?? Date.now;
    const transcripts = await SegmentLog.open(path.join(absolute, "transcripts"), { clock, ...options.transcripts });
    return new ArtifactStore(absolute, maxBytes, clock, transcripts);
  }

  /**
   * A trace artifact from the transcript recorder, which wrote its canonical
   * JSON and hashed it (`id`): appended to the transcript log, on disk when
   * this resolves.
   */
  putTranscript(id: string, canonical: string): Promise<void> {
    return this.transcripts.append(id, canonical, this.clock());
  }

  close(): Promise<void> {
    return this.transcripts.close();
  }

  /**
   * `encoded` lets a caller that already hashed the document (the transcript
   * recorder, which needs the id before the write) skip a second pass over a
   * possibly large document.
   */
  async put(input: Artifact, encoded?: { canonical: string; id: string }): Promise<{ artifact: Artifact; created: boolean }> {
    const doc = toDocument(input);
    const canonical = encoded?.canonical ?? encodeDocument(doc);
    const size = Buffer.byteLength(canonical, "utf8");
    if (size > this.maxBytes) {
      throw new ArtifactError("too_large", `the artifact is ${size} bytes of canonical JSON, above the limit of ${this.maxBytes} bytes`);
    }
    if (doc.parent !== undefined) {
      const parent = await this.read(doc.parent);
      if (parent === undefined) throw new ArtifactError("invalid", `unknown parent artifact ${doc.parent}`, "/parent");
      if (parent instanceof Corrupt) throw corruptError(doc.parent, parent);
    }

    const id = encoded?.id ?? idOf(canonical);
    const existing = await this.read(id);
    if (existing !== undefined && !(existing instanceof Corrupt)) {
      return { artifact: await this.withLineage(existing), created: false };
    }
    // A private deep copy with undefined members gone: re-parsed from the canonical text, except for
    // a caller's own pre-encoded document, which it hands over and does not touch again.
    const record = toRecord(id, encoded ? doc : artifactFromJson(JSON.parse(canonical)), this.clock());
    const file = this.fileFor(id);
    const text = `${canonicalJson(recordJson(record))}\n`;
    await ensureDir(path.dirname(file));
    // A corrupt file under this id is replaced: the content we hold is, by its hash, the right one.
    if (existing instanceof Corrupt) await publishFile(file, text, "replace");
    else if (!(await publishFile(file, text, "create"))) {
      // A concurrent put (here or in another process) published first; answering with its
      // record keeps every caller in agreement about created_ms.
      const winner = await this.read(id);
      if (winner === undefined || winner instanceof Corrupt) throw corruptError(id, winner ?? new Corrupt("vanished"));
      return { artifact: await this.withLineage(winner), created: false };
    }
    return { artifact: await this.withLineage(record), created: true };
  }

  /** Unknown ids give undefined; a malformed id is refused before any path is built from it. */
  async get(id: string): Promise<Artifact | undefined> {
    if (!isArtifactId(id)) throw new ArtifactError("invalid", "an artifact id is 64 lowercase hex characters", "id");
    const record = await this.read(id);
    if (record instanceof Corrupt) throw corruptError(id, record);
    return record && this.withLineage(record);
  }

  private fileFor(id: string): string {
    if (!isArtifactId(id)) throw new ArtifactError("invalid", "an artifact id is 64 lowercase hex characters", "id");
    return path.join(this.root, id.slice(0, 2), `${id}.json`);
  }

  private async read(id: string): Promise<ArtifactRecord | Corrupt | undefined> {
    let text: string;
    try {
      text = await readFile(this.fileFor(id), "utf8");
    } catch (err) {
      if (errorCode(err) === "ENOENT") return this.readTranscript(id);
      throw err;
    }
    const record = parseRecord(id, text);
    if (!(record instanceof Corrupt)) this.rememberParent(id, record.parent);
    return record;
  }

  private async readTranscript(id: string): Promise<ArtifactRecord | Corrupt | undefined> {
    const found = await this.transcripts.read(id);
    if (!found) return undefined;
    if (idOf(found.text) !== id) return new Corrupt("content does not hash to its id");
    try {
      return toRecord(id, toDocument(artifactFromJson(JSON.parse(found.text))), found.createdMs);
    } catch {
      return new Corrupt("not an artifact's JSON");
    }
  }

  private async withLineage(record: ArtifactRecord): Promise<Artifact> {
    const lineage: string[] = [];
    // Hashing makes a cycle impossible short of a hash collision; the set makes the walk safe regardless.
    const seen = new Set([record.id]);
    let next = record.parent;
    while (next !== undefined && lineage.length < MAX_LINEAGE_DEPTH && !seen.has(next)) {
      lineage.push(next);
      seen.add(next);
      next = await this.parentOf(next);
    }
    return { ...record, lineage };
  }

  /** A missing or corrupt ancestor ends the walk: lineage is best effort past what can be read. */
  private async parentOf(id: string): Promise<string | undefined> {
    const cached = this.parents.get(id);
    if (cached !== undefined) return cached ?? undefined;
    const record = await this.read(id);
    return record === undefined || record instanceof Corrupt ? undefined : record.parent;
  }

  private rememberParent(id: string, parent: string | undefined): void {
    if (this.parents.has(id)) return;
    if (this.parents.size >= PARENT_CACHE_LIMIT) this.parents.delete(this.parents.keys().next().value!);
    this.parents.set(id, parent ?? null);
  }
}

function toRecord(id: string, doc: Artifact, createdMs: number): ArtifactRecord {
  return { ...doc, id, digest: `sha256:${id}`, createdMs, lineage: [] };
}

/** Checks a file against its name, so a damaged or tampered file is never served as that id. */
function parseRecord(id: string, text: string): ArtifactRecord | Corrupt {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return new Corrupt("not JSON");
  }
  if (!isPlainObject(raw)) return new Corrupt("not a JSON object");
  if (raw.id !== id || raw.digest !== `sha256:${id}`) return new Corrupt("id or digest does not match the file name");
  if (typeof raw.created_ms !== "number" || !Number.isFinite(raw.created_ms)) return new Corrupt("bad created_ms");
  let doc: Artifact;
  try {
    doc = toDocument(artifactFromJson(raw));
    if (idOf(encodeDocument(doc)) !== id) return new Corrupt("content does not hash to its id");
  } catch (err) {
    if (err instanceof ArtifactError) return new Corrupt(err.message);
    throw err;
  }
  return toRecord(id, doc, raw.created_ms);
}

function corruptError(id: string, corrupt: Corrupt): Error {
  return new Error(`artifact ${id} is corrupt on disk: ${corrupt.reason}`);
}
