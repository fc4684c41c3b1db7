import assert from "node:assert/strict";
import test from "ava";
import fc from "fast-check";
import { Engine, ErrorCode, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { PlacementMode } from "../../../contracts/gen/llama_orch/v1/task.js";
import { place, type PlacementDecision, type PlacementRequest, type ReplicaSnapshot } from "../../../core/placement/placement.js";
import { planDispatch } from "../../../core/scheduler/dispatcher.js";

// Replicas whose model was unloaded after idling (--model-ttl): not ready, but
// a task sent to one loads the model again.

const GiB = 1024 ** 3;

function replica(replicaId: string, fields: Partial<ReplicaSnapshot> = {}): ReplicaSnapshot {
  return {
    replicaId,
    poolId: "p",
    engine: Engine.ENGINE_LLAMACPP,
    modelRef: "m",
    servesAnyModel: false,
    ready: true,
    draining: false,
    ctxMax: 8192,
    workloads: [],
    deviceMask: "0",
    vramFreeBytes: 8 * GiB,
    activeSlots: 0,
    slotsTotal: 2,
    features: {},
    ...fields,
  };
}

const asleep = (replicaId: string, fields: Partial<ReplicaSnapshot> = {}) =>
  replica(replicaId, { ready: false, wakesOnSubmit: true, vramFreeBytes: 80 * GiB, ...fields });

function request(fields: Partial<PlacementRequest> = {}): PlacementRequest {
  return {
    engine: Engine.ENGINE_LLAMACPP,
    modelRef: "m",
    ctx: 4096,
    workload: Workload.WORKLOAD_COMPLETION,
    needFreeSlot: true,
    ...fields,
  };
}

function placed(d: PlacementDecision): Extract<PlacementDecision, { outcome: "placed" }> {
  if (d.outcome !== "placed") throw new Error(`expected a placement, got ${d.message}`);
  return d;
}

test("a replica that unloaded its model takes a task when no ready replica serves the model", (t) => {
  const d = placed(place(request(), [asleep("s1"), replica("other", { modelRef: "m2" })]));
  t.like(d, { replicaId: "s1", why: "only_candidate", kvWarm: false });
  t.deepEqual(d.rejections, [{ replicaId: "other", poolId: "p", reason: "model_mismatch" }]);
});

test("it ranks after every ready replica of the model, whatever its VRAM, load, pool preference or session", (t) => {
  const ready = replica("r-busy", { activeSlots: 1, vramFreeBytes: 1 * GiB, poolId: "q" });
  const sleeper = asleep("a-asleep");
  const d = placed(
    place(
      request({
        sessionReplicaId: "a-asleep",
        overrides: { mode: PlacementMode.PLACEMENT_MODE_PREFER, pinPoolId: "", preferPools: ["p"], avoidPools: [], requireDeviceMask: "" },
      }),
      [sleeper, ready],
    ),
  );
  t.like(d, { replicaId: "r-busy", why: "model_loaded", kvWarm: false, fallback: true });
  t.deepEqual(d.ranked, ["r-busy", "a-asleep"]);
});

test("among replicas that must load, the usual order holds, but none counts as warm for its session", (t) => {
  const d = placed(place(request({ sessionReplicaId: "s2" }), [asleep("s1", { vramFreeBytes: 90 * GiB }), asleep("s2")]));
  t.like(d, { replicaId: "s1", why: "most_free_vram", kvWarm: false }, "the session's KV cache went with the unloaded model");
});

test("an unloaded replica is still held to the other checks", (t) => {
  t.like(place(request(), [asleep("s1", { draining: true })]), { outcome: "infeasible", code: ErrorCode.ERROR_CODE_POOL_UNREADY });
  t.like(place(request({ ctx: 16_384 }), [asleep("s1")]), { outcome: "infeasible", code: ErrorCode.ERROR_CODE_INVALID_PARAMS });
  t.like(place(request(), [asleep("s1", { activeSlots: 2 })]), { outcome: "infeasible", code: ErrorCode.ERROR_CODE_REPLICA_EXHAUSTED });
  t.like(place(request(), [replica("u1", { ready: false })]), { outcome: "infeasible", code: ErrorCode.ERROR_CODE_POOL_UNREADY });
});

test("dispatch sends work to ready replicas first, then wakes an unloaded one, and says which picks wait for a load", (t) => {
  const tasks = ["t1", "t2", "t3", "t4"].map((taskId) => ({ taskId, placement: request() }));
  const picks = planDispatch(tasks, [asleep("s1"), replica("r1", { slotsTotal: 1 })]);
  t.deepEqual(
    picks.map((p) => [p.taskId, p.replicaId, p.wakes]),
    [
      ["t1", "r1", false],
      ["t2", "s1", true],
      ["t3", "s1", true],
    ],
  );
  t.deepEqual(planDispatch(tasks.slice(0, 1), [asleep("s1", { activeSlots: 2 })]), [], "no free slot anywhere: nothing starts");
});

// --- properties: waking replicas among ready ones ---

const replicaArb: fc.Arbitrary<ReplicaSnapshot> = fc.record({
  replicaId: fc.string({ unit: fc.constantFrom("a", "b", "1"), minLength: 1, maxLength: 3 }),
  poolId: fc.constantFrom("a", "b"),
  engine: fc.constant(Engine.ENGINE_LLAMACPP),
  modelRef: fc.constantFrom("m", "m", "m2"),
  servesAnyModel: fc.boolean(),
  ready: fc.boolean(),
  wakesOnSubmit: fc.option(fc.boolean(), { nil: undefined }),
  draining: fc.constantFrom(false, false, false, true),
  ctxMax: fc.constantFrom(0, 8192),
  workloads: fc.constant<Workload[]>([]),
  deviceMask: fc.constantFrom("0", "1"),
  vramFreeBytes: fc.integer({ min: 0, max: 3 }),
  activeSlots: fc.integer({ min: 0, max: 2 }),
  slotsTotal: fc.constantFrom(1, 2),
  features: fc.constant({}),
});

const scenarioArb = fc.uniqueArray(replicaArb, { selector: (r) => r.replicaId, minLength: 1, maxLength: 8 }).chain((replicas) =>
  fc.record({
    replicas: fc.constant(replicas),
    shuffled: fc.shuffledSubarray(replicas, { minLength: replicas.length, maxLength: replicas.length }),
    request: fc.record({
      engine: fc.constant(Engine.ENGINE_LLAMACPP),
      modelRef: fc.constant("m"),
      ctx: fc.constant(1024),
      workload: fc.constant(Workload.WORKLOAD_COMPLETION),
      sessionReplicaId: fc.option(fc.constantFrom(...replicas.map((r) => r.replicaId)), { nil: undefined }),
      overrides: fc.option(
        fc.record({
          mode: fc.constant(PlacementMode.PLACEMENT_MODE_PREFER),
          pinPoolId: fc.constant(""),
          preferPools: fc.subarray(["a", "b"]),
          avoidPools: fc.constant<string[]>([]),
          requireDeviceMask: fc.constant(""),
          allowFallback: fc.option(fc.boolean(), { nil: undefined }),
        }),
        { nil: undefined },
      ),
      needFreeSlot: fc.boolean(),
    }),
  }),
);

const isWaking = (r: ReplicaSnapshot) => !r.ready && r.wakesOnSubmit === true;

test("with unloaded replicas too, the order of the replicas never changes the decision", (t) => {
  fc.assert(
    fc.property(scenarioArb, ({ replicas, shuffled, request }) => assert.deepEqual(place(request, shuffled), place(request, replicas))),
  );
  t.pass();
});

test("unloaded replicas rank after every ready one and never change the order of the ready ones", (t) => {
  fc.assert(
    fc.property(scenarioArb, ({ replicas, request }) => {
      const decision = place(request, replicas);
      const without = place(
        request,
        replicas.filter((r) => !isWaking(r)),
      );
      const ranked = decision.outcome === "placed" ? decision.ranked : [];
      const byId = new Map(replicas.map((r) => [r.replicaId, r]));
      const firstWaking = ranked.findIndex((id) => isWaking(byId.get(id)!));
      if (firstWaking >= 0)
        assert.ok(
          ranked.slice(firstWaking).every((id) => isWaking(byId.get(id)!)),
          `ready after unloaded: ${ranked.join(",")}`,
        );
      assert.deepEqual(
        ranked.filter((id) => !isWaking(byId.get(id)!)),
        without.outcome === "placed" ? without.ranked : [],
      );
      if (decision.outcome === "placed" && isWaking(byId.get(decision.replicaId)!)) assert.equal(decision.kvWarm, false);
    }),
  );
  t.pass();
});
