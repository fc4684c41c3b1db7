import { type Engine, ErrorCode, Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import type { GetCapabilitiesResponse, ServedModel } from "../../contracts/gen/llama_orch/v1/pool.js";
import type { CallContext, CoreClient } from "../core-client.js";
import { HttpError } from "../http-errors.js";
import type { ModelName } from "./model-names.js";

/** Where a task for a model name goes: the CreateTask fields a compatible API cannot get from its client. */
export interface ModelTarget {
  /** The name as the client gave it, echoed in responses. */
  name: string;
  engine: Engine;
  modelRef: string;
  ctx: number;
  pool?: string;
}

/** One entry of GET /v1/models: a name clients may use and what serves it now. */
export interface ListedModel {
  id: string;
  engine: Engine;
  modelRef: string;
  ctxMax: number;
  workloads: Workload[];
}

/** The context a configured name gets when neither its entry nor any ready replica says. */
const FALLBACK_CTX = 4096;
/** How long one answer of core's capabilities is used: a burst of requests costs one call, a reload shows within a second. */
const CAPABILITIES_TTL_MS = 1_000;
const NAMES_IN_A_MESSAGE = 20;

/**
 * Model names for the compatible APIs: the config's friendly names, and every
 * model_ref a ready replica serves (from core's capabilities, cached briefly).
 * The one owner of that cache.
 */
export class ModelDirectory {
  private cached: { at: number; caps: Promise<GetCapabilitiesResponse> } | undefined;

  constructor(
    private readonly core: CoreClient,
    private readonly names: Readonly<Record<string, ModelName>>,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /**
   * A configured name always resolves (core then says whether anything serves
   * it); otherwise the name must be a model_ref a ready replica serves for the
   * workload, else 404.
   */
  async resolve(cc: CallContext, name: string, workload: Workload): Promise<ModelTarget> {
    const served = (await this.capabilities(cc)).servedModels;
    const configured = Object.hasOwn(this.names, name) ? this.names[name] : undefined;
    if (configured) {
      const match = served.find((s) => s.modelRef === configured.modelRef && s.engine === configured.engine);
      const ctx = configured.ctx ?? match?.ctxMax ?? FALLBACK_CTX;
      return { name, engine: configured.engine, modelRef: configured.modelRef, ctx, pool: configured.pool };
    }
    const candidates = served.filter((s) => s.modelRef === name);
    const match = candidates.find((s) => servesWorkload(s, workload)) ?? candidates[0];
    if (!match) throw this.notFound(name, await this.list(cc));
    return { name, engine: match.engine, modelRef: match.modelRef, ctx: match.ctxMax || FALLBACK_CTX };
  }

  /** What GET /v1/models lists: configured names whose model is served, then every served model_ref. */
  async list(cc: CallContext): Promise<ListedModel[]> {
    const served = (await this.capabilities(cc)).servedModels;
    const listed: ListedModel[] = [];
    for (const [id, n] of Object.entries(this.names)) {
      const s = served.find((m) => m.modelRef === n.modelRef && m.engine === n.engine);
      if (s) listed.push(listedOf(id, s, n.ctx));
    }
    for (const s of served) if (!listed.some((l) => l.id === s.modelRef)) listed.push(listedOf(s.modelRef, s));
    return listed;
  }

  /** The entry GET /v1/models/{id} shows, or 404 in the caller's error shape. */
  async get(cc: CallContext, id: string): Promise<ListedModel> {
    const all = await this.list(cc);
    const found = all.find((m) => m.id === id);
    if (!found) throw this.notFound(id, all);
    return found;
  }

  private notFound(name: string, available: readonly ListedModel[]): HttpError {
    const ids = available.map((m) => m.id);
    const shown = ids.length > NAMES_IN_A_MESSAGE ? [...ids.slice(0, NAMES_IN_A_MESSAGE), "…"] : ids;
    const offer = shown.length > 0 ? `; available: ${shown.join(", ")}` : "; no replica is ready to serve any model";
    return HttpError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `model ${JSON.stringify(name)} is not served here${offer}`, { field: "/model" });
  }

  private capabilities(cc: CallContext): Promise<GetCapabilitiesResponse> {
    const now = this.clock();
    if (!this.cached || now - this.cached.at > CAPABILITIES_TTL_MS) {
      const caps = this.core.call<GetCapabilitiesResponse>(cc, (md, o, cb) => this.core.capabilities.getCapabilities({}, md, o, cb));
      this.cached = { at: now, caps };
      // A failed call must not be remembered: the next request asks again.
      caps.catch(() => {
        if (this.cached?.caps === caps) this.cached = undefined;
      });
    }
    return this.cached.caps;
  }
}

function servesWorkload(s: ServedModel, workload: Workload): boolean {
  // A replica that names no workloads serves completions only (as placement assumes).
  return s.workloads.length === 0 ? workload === Workload.WORKLOAD_COMPLETION : s.workloads.includes(workload);
}

function listedOf(id: string, s: ServedModel, ctx?: number): ListedModel {
  return { id, engine: s.engine, modelRef: s.modelRef, ctxMax: ctx ?? s.ctxMax, workloads: s.workloads };
}
