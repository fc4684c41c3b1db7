import test from "ava";
import { Determinism, Engine, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { CreateTaskRequest } from "../../../contracts/gen/llama_orch/v1/task.js";
import type { PlacementRequest, ReplicaSnapshot } from "../../../core/placement/placement.js";
import { DISPATCH_SCAN_LIMIT, planDispatch, placementRequestOf, type DispatchCandidate } from "../../../core/scheduler/dispatcher.js";

function replica(replicaId: string, fields: Partial<ReplicaSnapshot> = {}): ReplicaSnapshot {
  return {
    replicaId,
    poolId: "p",
    engine: Engine.ENGINE_LLAMACPP,
    modelRef: "m",
    servesAnyModel: false,
    ready: true,
    draining: false,
    ctxMax: 4096,
    workloads: [],
    deviceMask: "0",
    vramFreeBytes: 0,
    activeSlots: 0,
    slotsTotal: 1,
    features: {},
    ...fields,
  };
}

function candidate(taskId: string, fields: Partial<PlacementRequest> = {}): DispatchCandidate {
  return {
    taskId,
    placement: {
      engine: Engine.ENGINE_LLAMACPP,
      modelRef: "m",
      ctx: 1024,
      workload: Workload.WORKLOAD_COMPLETION,
      needFreeSlot: true,
      ...fields,
    },
  };
}

test("queued work goes out in queue order, one task per free slot, each pick taking its slot", (t) => {
  const picks = planDispatch([candidate("a"), candidate("b"), candidate("c")], [replica("r1", { slotsTotal: 2 })]);
  t.deepEqual(
    picks.map((p) => [p.taskId, p.replicaId]),
    [
      ["a", "r1"],
      ["b", "r1"],
    ],
  );
});

test("the least busy replica takes the next task, so work spreads across free slots", (t) => {
  const picks = planDispatch([candidate("a"), candidate("b")], [replica("r1", { slotsTotal: 2 }), replica("r2", { slotsTotal: 2 })]);
  t.deepEqual(
    picks.map((p) => p.replicaId),
    ["r1", "r2"],
  );
});

test("work no free replica can take is skipped, and later work that fits still goes", (t) => {
  const picks = planDispatch([candidate("too-long", { ctx: 8192 }), candidate("fits")], [replica("r1")]);
  t.deepEqual(
    picks.map((p) => p.taskId),
    ["fits"],
  );
});

test("nothing goes out when no replica is ready or has a free slot", (t) => {
  t.deepEqual(planDispatch([candidate("a")], [replica("r1", { ready: false }), replica("r2", { activeSlots: 1 })]), []);
  t.deepEqual(planDispatch([candidate("a")], []), []);
});

test("a draining replica takes nothing", (t) => {
  t.deepEqual(planDispatch([candidate("a")], [replica("r1", { draining: true })]), []);
});

test("the scan stops after its limit, so a long queue of work that does not fit costs a bounded walk", (t) => {
  const misfits = Array.from({ length: DISPATCH_SCAN_LIMIT }, (_, i) => candidate(`misfit-${i}`, { ctx: 8192 }));
  t.deepEqual(planDispatch([...misfits, candidate("fits")], [replica("r1")]), []);
  t.deepEqual(
    planDispatch([...misfits.slice(1), candidate("fits")], [replica("r1")]).map((p) => p.taskId),
    ["fits"],
  );
});

test("the caller's snapshots are left as they were", (t) => {
  const replicas = [replica("r1", { slotsTotal: 2 })];
  planDispatch([candidate("a")], replicas);
  t.is(replicas[0]!.activeSlots, 0);
});

test("a pick on the session's previous replica says its KV cache is warm", (t) => {
  const [pick] = planDispatch([candidate("a", { sessionReplicaId: "r2" })], [replica("r1"), replica("r2")]);
  t.like(pick, { taskId: "a", replicaId: "r2", kvWarm: true, why: "session_affinity" });
});

test("a strict-determinism task asks placement for the seed feature", (t) => {
  const strict = CreateTaskRequest.fromPartial({
    engine: Engine.ENGINE_LLAMACPP,
    modelRef: "m",
    ctx: 8,
    determinism: Determinism.DETERMINISM_STRICT,
  });
  t.deepEqual(placementRequestOf(strict, "r9", true).requiredFeatures, ["seed"]);
  t.like(placementRequestOf(strict, "r9", false), { sessionReplicaId: "r9", needFreeSlot: false });
  t.deepEqual(placementRequestOf(CreateTaskRequest.fromPartial({}), undefined, true).requiredFeatures, []);
});
