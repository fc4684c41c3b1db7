import { CatalogModelState, type CatalogModel, type Verification } from "../../contracts/gen/llama_orch/v1/catalog.js";
import { publicEnumNames } from "../../contracts/public-enum-names.js";
import { publicJson, PublicJsonError, type PublicJsonCodec } from "../../contracts/public-json.js";
import { CatalogError, CatalogStore as Store } from "../../core/catalog/catalog-store.js";
import { ModelRoots } from "../../core/catalog/model-roots.js";
import { verifyEntry as verify, type VerifyOptions } from "../../core/catalog/verify.js";
import type { Json } from "./json.js";

// The catalog store and verification seen through the public JSON, as clients
// and the index file see them: tests write entries the way the HTTP API does.

export { CATALOG_SCHEMA_VERSION, CatalogError } from "../../core/catalog/catalog-store.js";
export { sha256File } from "../../core/catalog/verify.js";

/** A catalog entry (or a verification) in its public JSON form. */
export type CatalogEntry = { [field: string]: Json };

const models = publicJson<CatalogModel>("llama_orch.v1.CatalogModel");
const verifications = publicJson<Verification>("llama_orch.v1.Verification");

/** JSON the codec refuses is refused as the catalog refuses bad input: invalid, naming the field. */
function decoded<T>(codec: PublicJsonCodec<T>, json: unknown): T {
  try {
    return codec.decode(json);
  } catch (err) {
    if (err instanceof PublicJsonError) throw new CatalogError("invalid", err.message, err.field);
    throw err;
  }
}

export class CatalogStore {
  private constructor(private readonly store: Store) {}

  static async open(root: string, clock?: () => number): Promise<CatalogStore> {
    return new CatalogStore(await Store.open(root, clock));
  }

  list(): CatalogEntry[] {
    return this.store.list().map((m) => models.encode(m));
  }

  get(id: string): CatalogEntry | undefined {
    const m = this.store.get(id);
    return m && models.encode(m);
  }

  async create(entry: CatalogEntry): Promise<CatalogEntry> {
    return models.encode(await this.store.create(decoded(models, entry)));
  }

  delete(id: string): Promise<boolean> {
    return this.store.delete(id);
  }

  /** `state` is a public name; one the enum does not have arrives as an unrecognized value, as over gRPC. */
  async setState(id: string, state: string, deadlineMs?: number): Promise<CatalogEntry> {
    const value = publicEnumNames("llama_orch.v1.CatalogModelState").value(state) ?? CatalogModelState.UNRECOGNIZED;
    return models.encode(await this.store.setState(id, value, deadlineMs));
  }

  async recordVerification(id: string, verification: CatalogEntry): Promise<CatalogEntry> {
    return models.encode(await this.store.recordVerification(id, decoded(verifications, verification)));
  }

  modelDir(id: string): string {
    return this.store.modelDir(id);
  }
}

/** A verification's warnings are always written, so they are typed here for the tests that read them. */
/** Verifies as core does; the readable roots default to the base directory and the model cache (tests of the roots give their own). */
export async function verifyEntry(
  entry: CatalogEntry,
  opts: Omit<VerifyOptions, "roots"> & { roots?: ModelRoots },
): Promise<CatalogEntry & { warnings: string[] }> {
  const roots = opts.roots ?? (await ModelRoots.of([opts.baseDir, ...(opts.modelCache ? [opts.modelCache.root] : [])]));
  return verifications.encode(await verify(decoded(models, entry), { ...opts, roots })) as CatalogEntry & { warnings: string[] };
}
