import assert from "node:assert/strict";
import test from "ava";
import fc from "fast-check";
import { Engine, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { PlacementMode, type PlacementOverrides } from "../../../contracts/gen/llama_orch/v1/task.js";
import { place, REJECT_REASONS, type PlacementRequest, type ReplicaSnapshot } from "../../../core/placement/placement.js";

// Small value pools so generated replicas collide on pools, masks, VRAM and
// load often enough to exercise every override and every tie-breaker; weights
// keep most scenarios placeable, so the ranking properties are not vacuous.
const POOLS = ["a", "b", "c"];

function weighted<T>(...choices: [T, number][]): fc.Arbitrary<T> {
  return fc.oneof(...choices.map(([value, weight]) => ({ arbitrary: fc.constant(value), weight })));
}

const replicaArb: fc.Arbitrary<ReplicaSnapshot> = fc.record({
  replicaId: fc.string({ unit: fc.constantFrom("a", "b", "B", "1"), minLength: 1, maxLength: 3 }),
  poolId: fc.constantFrom(...POOLS),
  engine: weighted([Engine.ENGINE_LLAMACPP, 6], [Engine.ENGINE_VLLM, 1]),
  modelRef: weighted(["m1", 6], ["m2", 1]),
  servesAnyModel: weighted([false, 4], [true, 1]),
  ready: weighted([true, 8], [false, 1]),
  draining: weighted([false, 8], [true, 1]),
  ctxMax: weighted([0, 2], [8192, 3], [2048, 1]),
  workloads: weighted<Workload[]>(
    [[], 4],
    [[Workload.WORKLOAD_COMPLETION, Workload.WORKLOAD_EMBEDDING], 2],
    [[Workload.WORKLOAD_EMBEDDING], 1],
  ),
  deviceMask: weighted(["0", 3], ["1", 2], ["0,1", 1], ["1,0", 1], ["cpu", 1]),
  vramFreeBytes: fc.integer({ min: 0, max: 3 }),
  activeSlots: fc.integer({ min: 0, max: 2 }),
  slotsTotal: weighted([0, 1], [2, 3], [4, 4]),
  features: weighted<Record<string, string>>([{}, 1], [{ seed: "true" }, 3], [{ seed: "false" }, 1]),
});

const overridesArb: fc.Arbitrary<PlacementOverrides> = fc.record({
  mode: weighted(
    [PlacementMode.PLACEMENT_MODE_UNSPECIFIED, 2],
    [PlacementMode.PLACEMENT_MODE_PIN, 1],
    [PlacementMode.PLACEMENT_MODE_PREFER, 2],
    [PlacementMode.PLACEMENT_MODE_AUTO, 1],
  ),
  pinPoolId: weighted(["", 1], ["a", 3], ["b", 3], ["z", 1]),
  preferPools: fc.subarray(POOLS, { maxLength: 2 }),
  avoidPools: fc.subarray(POOLS, { maxLength: 1 }),
  requireDeviceMask: weighted(["", 6], ["0", 2], ["0,1", 1], ["1, 0", 1]),
  allowFallback: weighted<boolean | undefined>([undefined, 2], [true, 1], [false, 2]),
});

function requestArb(replicaIds: string[]): fc.Arbitrary<PlacementRequest> {
  return fc.record({
    engine: weighted([Engine.ENGINE_LLAMACPP, 8], [Engine.ENGINE_VLLM, 1]),
    modelRef: weighted(["m1", 8], ["m2", 1]),
    ctx: weighted([0, 2], [1024, 2], [4096, 3], [16_384, 1]),
    workload: weighted([Workload.WORKLOAD_COMPLETION, 6], [Workload.WORKLOAD_UNSPECIFIED, 1], [Workload.WORKLOAD_EMBEDDING, 1]),
    overrides: fc.option(overridesArb, { nil: undefined, freq: 2 }),
    sessionReplicaId: fc.option(fc.constantFrom("gone", ...replicaIds), { nil: undefined }),
    requiredFeatures: weighted<string[] | undefined>([undefined, 2], [["seed"], 1]),
    needFreeSlot: fc.boolean(),
  });
}

/** Replica ids are unique in the registry, so they are unique here too. */
const scenarioArb = fc.uniqueArray(replicaArb, { selector: (r) => r.replicaId, minLength: 1, maxLength: 10 }).chain((replicas) =>
  fc.record({
    replicas: fc.constant(replicas),
    shuffled: fc.shuffledSubarray(replicas, { minLength: replicas.length, maxLength: replicas.length }),
    request: requestArb(replicas.map((r) => r.replicaId)),
  }),
);

// --- an independent, deliberately naive reading of the rules ---

function sameDevices(a: string, b: string): boolean {
  const set = (m: string) =>
    new Set(
      m
        .split(",")
        .map((d) => d.trim())
        .filter(Boolean),
    );
  const [x, y] = [set(a), set(b)];
  return x.size === y.size && [...x].every((d) => y.has(d));
}

function isPinned(q: PlacementRequest): boolean {
  return q.overrides?.mode === PlacementMode.PLACEMENT_MODE_PIN;
}

function preferredPools(q: PlacementRequest): string[] {
  return isPinned(q) ? [] : (q.overrides?.preferPools ?? []);
}

function feasibleByHand(q: PlacementRequest, r: ReplicaSnapshot): boolean {
  const o = q.overrides;
  const workload = q.workload === Workload.WORKLOAD_UNSPECIFIED ? Workload.WORKLOAD_COMPLETION : q.workload;
  const prefer = preferredPools(q);
  return (
    r.engine === q.engine &&
    (r.servesAnyModel || r.modelRef === q.modelRef) &&
    r.ready &&
    !r.draining &&
    (r.ctxMax === 0 || q.ctx <= r.ctxMax) &&
    (r.workloads.length === 0 ? workload === Workload.WORKLOAD_COMPLETION : r.workloads.includes(workload)) &&
    (!o?.requireDeviceMask || sameDevices(o.requireDeviceMask, r.deviceMask)) &&
    !(o?.avoidPools ?? []).includes(r.poolId) &&
    (!isPinned(q) || (o!.pinPoolId !== "" && r.poolId === o!.pinPoolId)) &&
    (prefer.length === 0 || o?.allowFallback !== false || prefer.includes(r.poolId)) &&
    (q.requiredFeatures ?? []).every((f) => r.features[f] === "true") &&
    (!q.needFreeSlot || r.activeSlots < r.slotsTotal)
  );
}

/** The documented order as a sort key: smaller key = better. */
function documentedKey(q: PlacementRequest, r: ReplicaSnapshot): [number, number, number, number, string] {
  return [
    preferredPools(q).includes(r.poolId) ? 0 : 1,
    r.replicaId === q.sessionReplicaId ? 0 : 1,
    -r.vramFreeBytes,
    r.activeSlots,
    r.replicaId,
  ];
}

function byDocumentedOrder(q: PlacementRequest): (a: ReplicaSnapshot, b: ReplicaSnapshot) => number {
  return (a, b) => {
    const [ka, kb] = [documentedKey(q, a), documentedKey(q, b)];
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! < kb[i]! ? -1 : 1;
    return 0;
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

// --- properties ---

test("the order of the replicas never changes the decision", (t) => {
  fc.assert(
    fc.property(scenarioArb, ({ replicas, shuffled, request }) => {
      assert.deepEqual(place(request, shuffled), place(request, replicas));
    }),
  );
  t.pass();
});

test("the chosen replica is feasible, and the ranking is exactly the feasible replicas in the documented order", (t) => {
  fc.assert(
    fc.property(scenarioArb, ({ replicas, request }) => {
      const decision = place(request, replicas);
      const feasible = replicas.filter((r) => feasibleByHand(request, r)).sort(byDocumentedOrder(request));
      if (decision.outcome === "infeasible") {
        assert.deepEqual(feasible, []);
        return;
      }
      const chosen = replicas.find((r) => r.replicaId === decision.replicaId)!;
      assert.equal(feasibleByHand(request, chosen), true, `${chosen.replicaId} was chosen but is not feasible`);
      assert.equal(decision.ranked[0], decision.replicaId);
      assert.deepEqual(
        decision.ranked,
        feasible.map((r) => r.replicaId),
      );
      assert.equal(decision.poolId, chosen.poolId);
      assert.equal(decision.kvWarm, chosen.replicaId === request.sessionReplicaId);
      const prefer = preferredPools(request);
      assert.equal(decision.fallback, prefer.length > 0 && !prefer.includes(chosen.poolId));
    }),
  );
  t.pass();
});

test("every replica not ranked has exactly one rejection, ranked ones none", (t) => {
  fc.assert(
    fc.property(scenarioArb, ({ replicas, request }) => {
      const decision = place(request, replicas);
      const ranked = decision.outcome === "placed" ? decision.ranked : [];
      const rejected = decision.rejections.map((r) => r.replicaId);
      assert.deepEqual([...ranked, ...rejected].sort(), replicas.map((r) => r.replicaId).sort());
      assert.deepEqual(rejected, [...rejected].sort(), "rejections are listed by replica id");
      for (const rejection of decision.rejections) {
        const replica = replicas.find((r) => r.replicaId === rejection.replicaId)!;
        assert.equal(rejection.poolId, replica.poolId);
        assert.equal(REJECT_REASONS.includes(rejection.reason), true, `unknown reason ${rejection.reason}`);
        assert.equal(feasibleByHand(request, replica), false, `${replica.replicaId} was rejected (${rejection.reason}) but is feasible`);
      }
    }),
  );
  t.pass();
});

test("place never mutates its inputs", (t) => {
  fc.assert(
    fc.property(scenarioArb, ({ replicas, request }) => {
      const inputs = deepFreeze(structuredClone({ replicas, request }));
      const before = structuredClone(inputs);
      place(inputs.request, inputs.replicas); // ESM is strict mode: a write to a frozen input throws
      assert.deepEqual(inputs, before);
    }),
  );
  t.pass();
});

test("place never throws, whatever the snapshots contain", (t) => {
  const anything: fc.Arbitrary<ReplicaSnapshot> = fc.record({
    replicaId: fc.string(),
    poolId: fc.string(),
    engine: fc.integer({ min: -1, max: 6 }),
    modelRef: fc.string(),
    servesAnyModel: fc.boolean(),
    ready: fc.boolean(),
    draining: fc.boolean(),
    ctxMax: fc.integer({ min: -10, max: 100_000 }),
    workloads: fc.array(fc.integer({ min: -1, max: 4 })),
    deviceMask: fc.string(),
    vramFreeBytes: fc.double(),
    activeSlots: fc.integer({ min: -1, max: 10 }),
    slotsTotal: fc.integer({ min: -1, max: 10 }),
    features: fc.dictionary(fc.string(), fc.string()),
  });
  const request = fc.record({
    engine: fc.integer({ min: -1, max: 6 }),
    modelRef: fc.string(),
    ctx: fc.integer({ min: -10, max: 100_000 }),
    workload: fc.integer({ min: -1, max: 4 }),
    overrides: fc.option(
      fc.record({
        mode: fc.integer({ min: -1, max: 4 }),
        pinPoolId: fc.string(),
        preferPools: fc.array(fc.string()),
        avoidPools: fc.array(fc.string()),
        requireDeviceMask: fc.string(),
        allowFallback: fc.option(fc.boolean(), { nil: undefined }),
      }),
      { nil: undefined },
    ),
    sessionReplicaId: fc.option(fc.string(), { nil: undefined }),
    requiredFeatures: fc.option(fc.array(fc.string()), { nil: undefined }),
    needFreeSlot: fc.boolean(),
  });
  fc.assert(
    fc.property(request, fc.array(anything, { maxLength: 10 }), (q, replicas) => {
      const decision = place(deepFreeze(q), deepFreeze(replicas));
      const ranked = decision.outcome === "placed" ? decision.ranked.length : 0;
      assert.equal(ranked + decision.rejections.length, replicas.length);
    }),
  );
  t.pass();
});
