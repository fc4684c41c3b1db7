import test from "ava";
import { Engine, ErrorCode, Priority, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { CreateTaskRequest } from "../../../contracts/gen/llama_orch/v1/task.js";
import { OrchError } from "../../../contracts/runtime/metadata.js";
import type { PlacementDecision } from "../../../core/placement/placement.js";
import {
  catalogRefusal,
  ctxRefusal,
  deadlineRefusal,
  droppedFromQueue,
  duplicateTaskRefusal,
  placementRefusal,
  queueFullRefusal,
  sessionRefusal,
  unservedModelRefusal,
} from "../../../core/scheduler/admission.js";

function request(fields: Partial<CreateTaskRequest> = {}): CreateTaskRequest {
  return CreateTaskRequest.fromPartial({
    taskId: "t1",
    sessionId: "s1",
    engine: Engine.ENGINE_LLAMACPP,
    workload: Workload.WORKLOAD_COMPLETION,
    priority: Priority.PRIORITY_INTERACTIVE,
    modelRef: "m",
    ctx: 4096,
    maxTokens: 64,
    deadlineMs: 1_000,
    ...fields,
  });
}

type Infeasible = Extract<PlacementDecision, { outcome: "infeasible" }>;

function infeasible(code: ErrorCode, field?: string): Infeasible {
  return { outcome: "infeasible", code, message: "no replica fits", ...(field ? { field } : {}), pinned: false, rejections: [] };
}

const placed: PlacementDecision = {
  outcome: "placed",
  replicaId: "r1",
  poolId: "p",
  ranked: ["r1"],
  pinned: false,
  fallback: false,
  kvWarm: false,
  why: "only_candidate",
  rejections: [],
};

test("a known task id is refused as INVALID_PARAMS on /task_id; a new one passes", (t) => {
  t.is(duplicateTaskRefusal("t1", false), undefined);
  const r = duplicateTaskRefusal("t1", true)!;
  t.is(r.reason, "duplicate_task_id");
  t.is(r.error.detail.code, ErrorCode.ERROR_CODE_INVALID_PARAMS);
  t.is(r.error.detail.field, "/task_id");
  t.is(r.error.message, "task_id t1 already exists");
});

test("max_tokens beyond ctx is refused with advice; max_tokens equal to ctx fits", (t) => {
  t.is(ctxRefusal(request({ ctx: 64, maxTokens: 64 })), undefined);
  const r = ctxRefusal(request({ ctx: 64, maxTokens: 65 }))!;
  t.is(r.reason, "ctx_exceeded");
  t.is(r.error.detail.field, "/max_tokens");
  t.is(r.error.message, "max_tokens 65 does not fit in ctx 64; raise ctx or lower max_tokens");
});

test("the catalog's refusal keeps its error and is labelled by its code", (t) => {
  t.is(catalogRefusal(undefined), undefined);
  const retired = OrchError.of(ErrorCode.ERROR_CODE_MODEL_DEPRECATED, "retired");
  t.deepEqual(catalogRefusal(retired), { reason: "model_deprecated", error: retired });
  const untrusted = OrchError.of(ErrorCode.ERROR_CODE_UNTRUSTED_ARTIFACT, "untrusted");
  t.deepEqual(catalogRefusal(untrusted), { reason: "untrusted_artifact", error: untrusted });
});

test("advice about an unserved model is asked for only when no replica serves it and no pool is available", (t) => {
  const advice = OrchError.of(ErrorCode.ERROR_CODE_POOL_UNAVAILABLE, "load it first");
  let asked = 0;
  const ask = () => {
    asked++;
    return advice;
  };
  t.is(unservedModelRefusal(placed, false, ask), undefined);
  t.is(unservedModelRefusal(infeasible(ErrorCode.ERROR_CODE_POOL_UNREADY), false, ask), undefined);
  t.is(unservedModelRefusal(infeasible(ErrorCode.ERROR_CODE_POOL_UNAVAILABLE), true, ask), undefined);
  t.is(asked, 0);
  t.deepEqual(unservedModelRefusal(infeasible(ErrorCode.ERROR_CODE_POOL_UNAVAILABLE), false, ask), {
    reason: "model_not_loaded",
    error: advice,
  });
  t.is(
    unservedModelRefusal(infeasible(ErrorCode.ERROR_CODE_POOL_UNAVAILABLE), false, () => undefined),
    undefined,
  );
});

test("an infeasible placement is refused with its code; only POOL_UNREADY is retriable, after a second", (t) => {
  const unready = placementRefusal(infeasible(ErrorCode.ERROR_CODE_POOL_UNREADY), request());
  t.is(unready.reason, "pool_unready");
  t.like(unready.error.detail, {
    code: ErrorCode.ERROR_CODE_POOL_UNREADY,
    retriable: true,
    retryAfterMs: 1_000,
    engine: Engine.ENGINE_LLAMACPP,
    field: "",
  });
  const unavailable = placementRefusal(infeasible(ErrorCode.ERROR_CODE_POOL_UNAVAILABLE), request());
  t.is(unavailable.reason, "pool_unavailable");
  t.like(unavailable.error.detail, { retriable: false });
  t.falsy(unavailable.error.detail.retryAfterMs);
  t.is(placementRefusal(infeasible(ErrorCode.ERROR_CODE_INVALID_PARAMS, "/ctx"), request()).reason, "ctx_exceeded");
  t.is(placementRefusal(infeasible(ErrorCode.ERROR_CODE_INVALID_PARAMS, "/ctx"), request()).error.detail.field, "/ctx");
  t.is(placementRefusal(infeasible(ErrorCode.ERROR_CODE_INTERNAL), request()).reason, "placement");
});

test("a session refusal is labelled by its policy", (t) => {
  const turns = OrchError.of(ErrorCode.ERROR_CODE_ADMISSION_REJECT, "no turns left", { policyLabel: "session-turns" });
  t.is(sessionRefusal(turns).reason, "session_turns");
  t.is(
    sessionRefusal(OrchError.of(ErrorCode.ERROR_CODE_ADMISSION_REJECT, "spent", { policyLabel: "session-budget" })).reason,
    "session_budget",
  );
});

test("the deadline check trusts a task until throughput is measured, then refuses a start plus decode beyond deadline_ms", (t) => {
  t.is(deadlineRefusal(request({ deadlineMs: 1_000 }), 5_000, undefined), undefined);
  t.is(deadlineRefusal(request({ deadlineMs: 1_000 }), 400, 600), undefined);
  const r = deadlineRefusal(request({ deadlineMs: 1_000 }), 400.4, 600.6)!;
  t.is(r.reason, "deadline_unmet");
  t.like(r.error.detail, { code: ErrorCode.ERROR_CODE_DEADLINE_UNMET, field: "/deadline_ms", retriable: true });
  t.is(
    r.error.message,
    "predicted start in 400 ms plus 601 ms of decode exceeds deadline_ms 1000; allow more time, lower max_tokens, or retry later",
  );
});

test("a full queue's refusal names the policy, says why nothing gave way and when to retry", (t) => {
  const queue = { poolId: "p", capacity: 4 };
  const reject = queueFullRefusal(queue, "reject", request(), 250);
  t.is(reject.reason, "queue_full");
  t.is(reject.error.message, "queue of pool p is full (4 tasks); retry in 250 ms");
  t.like(reject.error.detail, { code: ErrorCode.ERROR_CODE_ADMISSION_REJECT, retriable: true, retryAfterMs: 250, policyLabel: "reject" });
  const lru = queueFullRefusal(queue, "drop-lru", request(), 250);
  t.is(lru.error.message, "queue of pool p is full (4 tasks) and holds no batch task to drop; retry in 250 ms");
  t.is(lru.error.detail.code, ErrorCode.ERROR_CODE_QUEUE_FULL_DROP_LRU);
  const shed = queueFullRefusal(queue, "shed-low-priority", request(), 250);
  t.is(shed.error.message, "queue of pool p is full (4 tasks) and a batch task cannot displace another; retry in 250 ms");
  t.is(shed.error.detail.code, ErrorCode.ERROR_CODE_ADMISSION_REJECT);
});

test("a task dropped from a full queue ends with the policy's code and is told to resubmit", (t) => {
  t.deepEqual(droppedFromQueue(request(), "p", "drop-lru"), {
    $case: "error",
    error: {
      traceArtifactId: "",
      code: ErrorCode.ERROR_CODE_QUEUE_FULL_DROP_LRU,
      message: "dropped from the full queue of pool p to admit newer work (policy drop-lru); resubmit later",
      engine: Engine.ENGINE_LLAMACPP,
      retriable: true,
    },
  });
  const shed = droppedFromQueue(request(), "p", "shed-low-priority");
  t.is(shed.$case === "error" ? shed.error.code : undefined, ErrorCode.ERROR_CODE_ADMISSION_REJECT);
});
