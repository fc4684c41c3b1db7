import test from "ava";
import { Engine, ErrorCode, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { PlacementMode, type PlacementOverrides } from "../../../contracts/gen/llama_orch/v1/task.js";
import {
  metricLabels,
  place,
  type PlacementDecision,
  type PlacementRequest,
  type ReplicaSnapshot,
} from "../../../core/placement/placement.js";

const GiB = 1024 ** 3;

function replica(replicaId: string, fields: Partial<ReplicaSnapshot> = {}): ReplicaSnapshot {
  return {
    replicaId,
    poolId: "pool-a",
    engine: Engine.ENGINE_LLAMACPP,
    modelRef: "llama-3-8b",
    servesAnyModel: false,
    ready: true,
    draining: false,
    ctxMax: 8192,
    workloads: [],
    deviceMask: "0",
    vramFreeBytes: 8 * GiB,
    activeSlots: 0,
    slotsTotal: 4,
    features: {},
    ...fields,
  };
}

function request(fields: Partial<PlacementRequest> = {}): PlacementRequest {
  return {
    engine: Engine.ENGINE_LLAMACPP,
    modelRef: "llama-3-8b",
    ctx: 4096,
    workload: Workload.WORKLOAD_COMPLETION,
    needFreeSlot: true,
    ...fields,
  };
}

function overrides(fields: Partial<PlacementOverrides>): PlacementOverrides {
  return { mode: PlacementMode.PLACEMENT_MODE_AUTO, pinPoolId: "", preferPools: [], avoidPools: [], requireDeviceMask: "", ...fields };
}

type Placed = Extract<PlacementDecision, { outcome: "placed" }>;
type Infeasible = Extract<PlacementDecision, { outcome: "infeasible" }>;

function placed(d: PlacementDecision): Placed {
  if (d.outcome !== "placed") throw new Error(`expected a placement, got ${d.message}`);
  return d;
}

function infeasible(d: PlacementDecision): Infeasible {
  if (d.outcome !== "infeasible") throw new Error(`expected infeasible, got ${d.replicaId}`);
  return d;
}

// --- who may be chosen ---

test("a draining replica is never chosen, however much VRAM it has free", (t) => {
  const d = placed(place(request(), [replica("r1", { draining: true, vramFreeBytes: 80 * GiB }), replica("r2")]));
  t.is(d.replicaId, "r2");
  t.deepEqual(d.ranked, ["r2"]);
  t.deepEqual(d.rejections, [{ replicaId: "r1", poolId: "pool-a", reason: "draining" }]);
});

test("require_device_mask never spills over to another device", (t) => {
  const replicas = [
    replica("gpu0", { deviceMask: "0", activeSlots: 4 }),
    replica("gpu1", { deviceMask: "1" }),
    replica("both", { deviceMask: "0,1" }),
  ];
  const d = infeasible(place(request({ overrides: overrides({ requireDeviceMask: "0" }) }), replicas));
  t.is(d.code, ErrorCode.ERROR_CODE_REPLICA_EXHAUSTED, "the only replica on device 0 is busy: wait for it, do not move");
  t.deepEqual(
    d.rejections.map((r) => [r.replicaId, r.reason]),
    [
      ["both", "device_mask_mismatch"],
      ["gpu0", "no_free_slot"],
      ["gpu1", "device_mask_mismatch"],
    ],
  );
});

test("require_device_mask matches the same device set however it is spelled", (t) => {
  const d = placed(
    place(request({ overrides: overrides({ requireDeviceMask: "1, 0" }) }), [
      replica("r0", { deviceMask: "0" }),
      replica("r01", { deviceMask: "0,1" }),
    ]),
  );
  t.is(d.replicaId, "r01");
});

test("pin never falls back, even with allow_fallback=true", (t) => {
  const replicas = [replica("a1", { poolId: "pool-a", ready: false }), replica("b1", { poolId: "pool-b" })];
  const d = infeasible(
    place(
      request({ overrides: overrides({ mode: PlacementMode.PLACEMENT_MODE_PIN, pinPoolId: "pool-a", allowFallback: true }) }),
      replicas,
    ),
  );
  t.true(d.pinned);
  t.is(d.code, ErrorCode.ERROR_CODE_POOL_UNREADY, "the pinned pool is starting: the client should retry, not go elsewhere");
  t.deepEqual(
    d.rejections.map((r) => r.reason),
    ["not_ready", "pool_not_pinned"],
  );
});

test("pin places only in the pinned pool and says it was pinned", (t) => {
  const replicas = [
    replica("a1", { poolId: "pool-a", vramFreeBytes: 1 * GiB }),
    replica("b1", { poolId: "pool-b", vramFreeBytes: 40 * GiB }),
  ];
  const d = placed(place(request({ overrides: overrides({ mode: PlacementMode.PLACEMENT_MODE_PIN, pinPoolId: "pool-a" }) }), replicas));
  t.like(d, { replicaId: "a1", pinned: true, fallback: false, why: "only_candidate" });
  t.deepEqual(metricLabels(d), { outcome: "placed", pinned: "true", fallback: "false" });
});

test("prefer falls back only when allowed, and says so", (t) => {
  const replicas = [replica("a1", { poolId: "pool-a", activeSlots: 4 }), replica("b1", { poolId: "pool-b" })];
  const prefer = (allowFallback?: boolean) =>
    overrides({ mode: PlacementMode.PLACEMENT_MODE_PREFER, preferPools: ["pool-a"], allowFallback });

  const byDefault = placed(place(request({ overrides: prefer() }), replicas));
  t.like(byDefault, { replicaId: "b1", poolId: "pool-b", fallback: true, pinned: false });
  t.deepEqual(metricLabels(byDefault), { outcome: "placed", pinned: "false", fallback: "true" });

  const strict = infeasible(place(request({ overrides: prefer(false) }), replicas));
  t.is(strict.code, ErrorCode.ERROR_CODE_REPLICA_EXHAUSTED, "the preferred pool is only busy: a slot will free up");
  t.deepEqual(
    strict.rejections.map((r) => [r.replicaId, r.reason]),
    [
      ["a1", "no_free_slot"],
      ["b1", "pool_not_preferred"],
    ],
  );
});

test("preferred pools rank first, even ahead of session affinity", (t) => {
  const replicas = [
    replica("a1", { poolId: "pool-a", vramFreeBytes: 1 * GiB }),
    replica("b1", { poolId: "pool-b", vramFreeBytes: 40 * GiB }),
  ];
  const d = placed(place(request({ sessionReplicaId: "b1", overrides: overrides({ preferPools: ["pool-a"] }) }), replicas));
  t.like(d, { replicaId: "a1", fallback: false, kvWarm: false, why: "preferred_pool" });
  t.deepEqual(d.ranked, ["a1", "b1"]);
});

test("avoid_pools is hard: no fallback into an avoided pool", (t) => {
  const d = infeasible(place(request({ overrides: overrides({ avoidPools: ["pool-a"], allowFallback: true }) }), [replica("a1")]));
  t.is(d.code, ErrorCode.ERROR_CODE_POOL_UNAVAILABLE);
  t.regex(d.message, /avoid_pools excludes pool\(s\) pool-a/);
});

test("a replica that serves any model takes any model_ref", (t) => {
  const d = placed(place(request({ modelRef: "whatever" }), [replica("any", { servesAnyModel: true, modelRef: "" })]));
  t.is(d.replicaId, "any");
});

test("an unknown ctx_max means unlimited context", (t) => {
  const d = placed(place(request({ ctx: 1_000_000 }), [replica("r1", { ctxMax: 0 })]));
  t.is(d.replicaId, "r1");
});

test("a replica that lists no workloads serves completion only", (t) => {
  const replicas = [replica("plain"), replica("embedder", { workloads: [Workload.WORKLOAD_EMBEDDING], vramFreeBytes: 1 })];
  t.is(placed(place(request(), replicas)).replicaId, "plain");
  t.is(placed(place(request({ workload: Workload.WORKLOAD_EMBEDDING }), replicas)).replicaId, "embedder");
});

test('a required feature must be exactly "true"', (t) => {
  const replicas = [
    replica("no", { features: { seed: "false" } }),
    replica("absent"),
    replica("yes", { features: { seed: "true" }, vramFreeBytes: 1 }),
  ];
  const d = placed(place(request({ requiredFeatures: ["seed"] }), replicas));
  t.is(d.replicaId, "yes");
  t.deepEqual(
    d.rejections.map((r) => r.reason),
    ["feature_missing", "feature_missing"],
  );
});

test("at admission time a full replica still counts; at dispatch time it does not", (t) => {
  const replicas = [replica("full", { activeSlots: 4 })];
  t.is(placed(place(request({ needFreeSlot: false }), replicas)).replicaId, "full");
  t.is(infeasible(place(request({ needFreeSlot: true }), replicas)).code, ErrorCode.ERROR_CODE_REPLICA_EXHAUSTED);
});

// --- ranking ---

test("session affinity wins over free VRAM and reports kv warm", (t) => {
  const replicas = [replica("big", { vramFreeBytes: 40 * GiB }), replica("warm", { vramFreeBytes: 2 * GiB })];
  const d = placed(place(request({ sessionReplicaId: "warm" }), replicas));
  t.like(d, { replicaId: "warm", kvWarm: true, why: "session_affinity" });
  t.deepEqual(d.ranked, ["warm", "big"]);
});

test("a session whose replica is busy moves and reports kv not warm", (t) => {
  const replicas = [replica("big", { vramFreeBytes: 40 * GiB }), replica("warm", { activeSlots: 4 })];
  const d = placed(place(request({ sessionReplicaId: "warm" }), replicas));
  t.like(d, { replicaId: "big", kvWarm: false, why: "only_candidate" });
});

test("most free VRAM wins, then fewest active slots", (t) => {
  const byVram = placed(place(request(), [replica("r1", { vramFreeBytes: 2 * GiB }), replica("r2", { vramFreeBytes: 3 * GiB })]));
  t.like(byVram, { replicaId: "r2", why: "most_free_vram" });
  const bySlots = placed(place(request(), [replica("r1", { activeSlots: 2 }), replica("r2", { activeSlots: 1 })]));
  t.like(bySlots, { replicaId: "r2", why: "fewest_active_slots" });
});

test("ties break on replica_id, in plain code-unit order", (t) => {
  const d = placed(place(request(), [replica("b"), replica("a"), replica("B")]));
  t.like(d, { replicaId: "B", why: "replica_id" });
  t.deepEqual(d.ranked, ["B", "a", "b"]);
});

test("the input order never changes the decision", (t) => {
  const replicas = [
    replica("r3", { activeSlots: 1 }),
    replica("r1", { draining: true }),
    replica("r2"),
    replica("r4", { engine: Engine.ENGINE_VLLM }),
  ];
  t.deepEqual(place(request(), replicas), place(request(), [...replicas].reverse()));
});

// --- rejections ---

test("one rejection per replica with its first failing reason", (t) => {
  const d = place(request({ ctx: 16_384, requiredFeatures: ["seed"] }), [
    replica("r1", { engine: Engine.ENGINE_VLLM, ready: false }),
    replica("r2", { modelRef: "other", draining: true }),
    replica("r3", { ready: false, draining: true }),
    replica("r4", { draining: true, ctxMax: 4096 }),
    replica("r5", { ctxMax: 4096, activeSlots: 4 }),
    replica("r6", { ctxMax: 0, activeSlots: 4 }),
    replica("r7", { ctxMax: 0, features: { seed: "true" }, activeSlots: 4 }),
  ]);
  t.deepEqual(
    d.rejections.map((r) => [r.replicaId, r.reason]),
    [
      ["r1", "engine_mismatch"],
      ["r2", "model_mismatch"],
      ["r3", "not_ready"],
      ["r4", "draining"],
      ["r5", "ctx_exceeds_limit"],
      ["r6", "feature_missing"],
      ["r7", "no_free_slot"],
    ],
  );
});

// --- infeasible: code, message, field ---

test("no replica for the engine and model: POOL_UNAVAILABLE naming what is served", (t) => {
  const d = infeasible(
    place(request({ modelRef: "mistral-7b" }), [replica("r1"), replica("r2", { engine: Engine.ENGINE_VLLM, modelRef: "mistral-7b" })]),
  );
  t.is(d.code, ErrorCode.ERROR_CODE_POOL_UNAVAILABLE);
  t.is(d.message, "no pool serves engine llamacpp with model mistral-7b; llamacpp replicas serve llama-3-8b");
  t.is(d.field, undefined);
  t.deepEqual(metricLabels(d), { outcome: "infeasible", pinned: "false", fallback: "false" });
});

test("no replica at all: POOL_UNAVAILABLE", (t) => {
  const d = infeasible(place(request({ engine: Engine.ENGINE_TGI }), []));
  t.is(d.code, ErrorCode.ERROR_CODE_POOL_UNAVAILABLE);
  t.is(d.message, "no pool serves engine tgi with model llama-3-8b; no tgi replica is registered");
  t.deepEqual(d.rejections, []);
});

test("matching replicas that are all starting or draining: POOL_UNREADY", (t) => {
  const d = infeasible(place(request(), [replica("r1", { ready: false }), replica("r2", { draining: true })]));
  t.is(d.code, ErrorCode.ERROR_CODE_POOL_UNREADY);
  t.is(d.message, "no replica serving llamacpp/llama-3-8b is ready (1 replica not ready yet, 1 replica draining); retry shortly");
});

test("ctx above every ready replica's limit: INVALID_PARAMS at /ctx naming the largest served", (t) => {
  const d = infeasible(
    place(request({ ctx: 32_768 }), [
      replica("r1", { ctxMax: 4096 }),
      replica("r2", { ctxMax: 16_384 }),
      replica("r3", { ctxMax: 65_536, ready: false }),
    ]),
  );
  t.is(d.code, ErrorCode.ERROR_CODE_INVALID_PARAMS);
  t.is(d.field, "/ctx");
  t.is(d.message, "ctx 32768 exceeds the largest context served for llamacpp/llama-3-8b (16384); ask for ctx 16384 or less");
});

test("an unsupported workload: POOL_UNAVAILABLE naming what is supported", (t) => {
  const d = infeasible(place(request({ workload: Workload.WORKLOAD_RERANK }), [replica("r1")]));
  t.is(d.code, ErrorCode.ERROR_CODE_POOL_UNAVAILABLE);
  t.is(d.message, "no ready replica serving llamacpp/llama-3-8b supports workload rerank; they support completion");
});

test("overrides that exclude everything: POOL_UNAVAILABLE saying which override did", (t) => {
  const replicas = [
    replica("a1", { poolId: "pool-a", deviceMask: "1" }),
    replica("b1", { poolId: "pool-b" }),
    replica("c1", { poolId: "pool-c" }),
  ];
  const d = infeasible(
    place(
      request({
        overrides: overrides({
          requireDeviceMask: "0",
          avoidPools: ["pool-b"],
          mode: PlacementMode.PLACEMENT_MODE_PIN,
          pinPoolId: "pool-a",
        }),
      }),
      replicas,
    ),
  );
  t.is(d.code, ErrorCode.ERROR_CODE_POOL_UNAVAILABLE);
  t.is(
    d.message,
    'no replica serving llamacpp/llama-3-8b is allowed by the placement overrides: require_device_mask "0" excludes the replicas on device mask(s) "1"; ' +
      'avoid_pools excludes pool(s) pool-b; pin_pool_id "pool-a" excludes pool(s) pool-c and a pin never falls back; relax the overrides to place the task',
  );
  t.deepEqual(metricLabels(d), { outcome: "infeasible", pinned: "true", fallback: "false" });
});

test("prefer without fallback that excludes everything: POOL_UNAVAILABLE naming the preference", (t) => {
  const d = infeasible(place(request({ overrides: overrides({ preferPools: ["pool-z"], allowFallback: false }) }), [replica("a1")]));
  t.is(d.code, ErrorCode.ERROR_CODE_POOL_UNAVAILABLE);
  t.regex(d.message, /prefer_pools pool-z with allow_fallback=false excludes pool\(s\) pool-a/);
});

test("a missing required feature everywhere: POOL_UNAVAILABLE naming the feature", (t) => {
  const d = infeasible(place(request({ requiredFeatures: ["seed"] }), [replica("r1")]));
  t.is(d.code, ErrorCode.ERROR_CODE_POOL_UNAVAILABLE);
  t.regex(d.message, /required feature\(s\) seed set to "true"/);
});

test("only busy replicas left: REPLICA_EXHAUSTED, even if others are unready", (t) => {
  const d = infeasible(
    place(request(), [
      replica("r1", { activeSlots: 4 }),
      replica("r2", { activeSlots: 2, slotsTotal: 2 }),
      replica("r3", { ready: false }),
    ]),
  );
  t.is(d.code, ErrorCode.ERROR_CODE_REPLICA_EXHAUSTED);
  t.is(d.message, "all 2 eligible replicas of llamacpp/llama-3-8b are busy (6 of 6 slots in use); retry when a slot frees up");
});

test("pin mode without a pool id: INVALID_PARAMS at /placement/pin_pool_id", (t) => {
  const d = infeasible(
    place(request({ overrides: overrides({ mode: PlacementMode.PLACEMENT_MODE_PIN }) }), [replica("r1", { poolId: "" })]),
  );
  t.is(d.code, ErrorCode.ERROR_CODE_INVALID_PARAMS);
  t.is(d.field, "/placement/pin_pool_id");
  t.deepEqual(
    d.rejections.map((r) => r.reason),
    ["pool_not_pinned"],
  );
});
