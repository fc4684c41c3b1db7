import type { Engine, Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import type { GetCapabilitiesResponse, ServedModel } from "../../contracts/gen/llama_orch/v1/pool.js";
import type { Replica } from "../registry/replica.js";

/**
 * What the registered sidecars can serve, per engine: the largest context,
 * every workload, the slots of live replicas, and the features every live
 * replica of that engine offers (a feature only some offer cannot be relied on).
 */
export function capabilitiesOf(replicas: readonly Replica[]): GetCapabilitiesResponse {
  const byEngine = new Map<Engine, Replica[]>();
  for (const r of replicas) {
    if (!r.health.live || !r.info) continue;
    const list = byEngine.get(r.registration.engine) ?? [];
    list.push(r);
    byEngine.set(r.registration.engine, list);
  }
  const engines = [...byEngine.entries()]
    .sort(([a], [b]) => a - b)
    .map(([engine, rs]) => {
      const workloads = new Set<Workload>();
      for (const r of rs) for (const w of r.info!.workloads) workloads.add(w);
      const features: Record<string, string> = { ...rs[0]!.info!.features };
      for (const r of rs.slice(1)) for (const k of Object.keys(features)) if (r.info!.features[k] !== features[k]) delete features[k];
      return {
        engine,
        ctxMax: Math.max(...rs.map((r) => r.info!.ctxMax)),
        supportedWorkloads: [...workloads].sort((a, b) => a - b),
        concurrency: rs.reduce((n, r) => n + r.slotsTotal, 0),
        features,
        replicas: rs.length,
      };
    });
  const models = [...new Set(replicas.filter((r) => r.isReady).map((r) => r.modelRef))].sort();
  return { engines, models, servedModels: servedModelsOf(replicas) };
}

/** One entry per (model, engine) that ready replicas serve, sorted by model then engine. */
export function servedModelsOf(replicas: readonly Replica[]): ServedModel[] {
  const byKey = new Map<string, ServedModel>();
  for (const r of replicas) {
    if (!r.isReady) continue;
    const engine = r.registration.engine;
    const key = `${engine}\u0000${r.modelRef}`;
    const served = byKey.get(key) ?? { modelRef: r.modelRef, engine, ctxMax: 0, workloads: [], poolIds: [], replicas: 0 };
    served.ctxMax = Math.max(served.ctxMax, r.info!.ctxMax);
    served.workloads = [...new Set([...served.workloads, ...r.info!.workloads])].sort((a, b) => a - b);
    if (!served.poolIds.includes(r.poolId)) served.poolIds = [...served.poolIds, r.poolId].sort();
    served.replicas++;
    byKey.set(key, served);
  }
  return [...byKey.values()].sort((a, b) => (a.modelRef < b.modelRef ? -1 : a.modelRef > b.modelRef ? 1 : a.engine - b.engine));
}
