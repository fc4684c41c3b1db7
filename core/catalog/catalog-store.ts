import { mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { removeStaleTempFiles, writeFileAtomic } from "../../contracts/runtime/atomic-file.js";
import { CatalogModelState, type CatalogModel, type Verification } from "../../contracts/gen/llama_orch/v1/catalog.js";
import {
  CatalogError,
  checkVerification,
  cloneModel,
  isModelState,
  isValidId,
  modelFromIndex,
  modelToJson,
  registration,
  stateName,
} from "./catalog-model.js";

export { CatalogError } from "./catalog-model.js";

export const CATALOG_SCHEMA_VERSION = 1;
const INDEX_FILE = "index.json";
const MODELS_DIR = "models";

type Models = ReadonlyMap<string, CatalogModel>;

/**
 * The durable model catalog. One process owns a root: the index is rewritten atomically after
 * every mutation, and mutations run one at a time so concurrent callers never lose an update.
 */
export class CatalogStore {
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly root: string,
    private readonly indexPath: string,
    private models: Models,
    private readonly clock: () => number,
  ) {}

  static async open(root: string, clock: () => number = Date.now): Promise<CatalogStore> {
    const abs = path.resolve(root);
    await mkdir(abs, { recursive: true });
    const indexPath = path.join(abs, INDEX_FILE);
    // Safe here because this store is the index's only writer and has not written yet.
    await removeStaleTempFiles(indexPath);
    return new CatalogStore(abs, indexPath, await loadIndex(indexPath), clock);
  }

  /** Sorted by id, so the order does not depend on history or restarts. */
  list(): CatalogModel[] {
    return [...this.models.keys()].sort().map((id) => cloneModel(this.models.get(id)!));
  }

  get(id: string): CatalogModel | undefined {
    const e = this.models.get(id);
    return e && cloneModel(e);
  }

  /**
   * The entry a task's model_ref names: by id, else by source_url. On the
   * admission path, so it copies only the entry it returns.
   */
  lookup(modelRef: string): CatalogModel | undefined {
    const byId = this.models.get(modelRef);
    if (byId) return cloneModel(byId);
    for (const e of this.models.values()) if (e.sourceUrl === modelRef) return cloneModel(e);
    return undefined;
  }

  /** Registers the client's fields of `input`; state, times and verification are the catalog's own. */
  async create(input: CatalogModel): Promise<CatalogModel> {
    const base = registration(input);
    return this.mutate((models) => {
      if (models.has(base.id)) throw new CatalogError("conflict", `model "${base.id}" already exists`, "/id");
      const now = this.clock();
      return { ...base, state: CatalogModelState.CATALOG_MODEL_STATE_ACTIVE, stateChangedMs: now, createdMs: now };
    });
  }

  /** Removes the entry and its local cache; false when there was no such entry. */
  async delete(id: string): Promise<boolean> {
    if (!isValidId(id)) return false;
    return this.serialize(async () => {
      if (!this.models.has(id)) return false;
      // Cache first: if that fails the entry stays and the delete can be retried; a crash in
      // between leaves an entry with no cache, which is just a not-yet-fetched model.
      await rm(this.modelDir(id), { recursive: true, force: true });
      const next = new Map(this.models);
      next.delete(id);
      await this.persist(next);
      return true;
    });
  }

  /** `deadlineMs` is a duration (as in the API); it is stored as an absolute retire_deadline_ms. */
  async setState(id: string, state: CatalogModelState, deadlineMs?: number): Promise<CatalogModel> {
    if (!isModelState(state)) throw new CatalogError("invalid", `/state must be Active or Retired, got ${stateName(state)}`, "/state");
    if (deadlineMs !== undefined && !(Number.isSafeInteger(deadlineMs) && deadlineMs >= 0)) {
      throw new CatalogError("invalid", "/deadline_ms must be a non-negative integer", "/deadline_ms");
    }
    return this.mutate((models) => {
      const old = mustGet(models, id);
      const now = this.clock();
      const retiring = state === CatalogModelState.CATALOG_MODEL_STATE_RETIRED && deadlineMs !== undefined;
      return {
        ...old,
        state,
        stateChangedMs: state === old.state ? old.stateChangedMs : now,
        retireDeadlineMs: retiring ? now + deadlineMs : undefined,
      };
    });
  }

  async recordVerification(id: string, v: Verification): Promise<CatalogModel> {
    const verification = checkVerification(v);
    return this.mutate((models) => ({ ...mustGet(models, id), verification }));
  }

  /** root/models/<id>: built only from a validated id and checked to stay under root. */
  modelDir(id: string): string {
    if (!isValidId(id)) throw new CatalogError("invalid", `invalid model id ${JSON.stringify(id)}`, "/id");
    const base = path.join(this.root, MODELS_DIR);
    const dir = path.resolve(base, id);
    const rel = path.relative(base, dir);
    if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel) || rel.includes(path.sep)) {
      throw new CatalogError("invalid", `model id ${JSON.stringify(id)} escapes the catalog`, "/id");
    }
    return dir;
  }

  /** Computes a new version of one entry, persists it, and only then makes it visible. */
  private mutate(update: (models: Models) => CatalogModel): Promise<CatalogModel> {
    return this.serialize(async () => {
      const entry = update(this.models);
      const next = new Map(this.models).set(entry.id, entry);
      await this.persist(next);
      return cloneModel(entry);
    });
  }

  private serialize<T>(op: () => Promise<T>): Promise<T> {
    const run = this.tail.then(op, op);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** The index holds each entry as its public JSON, sorted by id. */
  private async persist(next: Map<string, CatalogModel>): Promise<void> {
    const models = Object.fromEntries([...next.keys()].sort().map((id) => [id, modelToJson(next.get(id)!)]));
    await writeFileAtomic(this.indexPath, JSON.stringify({ schema_version: CATALOG_SCHEMA_VERSION, models }, null, 2) + "\n");
    this.models = next;
  }
}

function mustGet(models: Models, id: string): CatalogModel {
  const e = models.get(id);
  if (!e) throw new CatalogError("not_found", `no model "${id}" in the catalog`, "/id");
  return e;
}

async function loadIndex(indexPath: string): Promise<Models> {
  let text: string;
  try {
    text = await readFile(indexPath, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw err;
  }
  // Writes are atomic, so anything unreadable here was damaged from outside: refuse rather
  // than start empty and overwrite the operator's catalog on the next mutation.
  const refuse = (why: string): never => {
    throw new Error(`catalog index ${indexPath}: ${why}; refusing to open it (repair or move the file aside)`);
  };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return refuse(`not valid JSON (${(err as Error).message})`);
  }
  if (typeof doc !== "object" || doc === null) return refuse("not a JSON object");
  const { schema_version, models } = doc as { schema_version?: unknown; models?: unknown };
  if (schema_version !== CATALOG_SCHEMA_VERSION) {
    return refuse(`unknown schema_version ${JSON.stringify(schema_version)} (this build reads version ${CATALOG_SCHEMA_VERSION})`);
  }
  if (typeof models !== "object" || models === null || Array.isArray(models)) return refuse('"models" is not an object');
  const out = new Map<string, CatalogModel>();
  for (const [key, value] of Object.entries(models)) {
    try {
      out.set(key, modelFromIndex(value, key));
    } catch (err) {
      if (err instanceof CatalogError) refuse(`entry "${key}": ${err.message}`);
      throw err;
    }
  }
  return out;
}
