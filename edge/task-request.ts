import { Determinism, Engine, KvHint, Priority, Workload } from "../contracts/gen/llama_orch/v1/common.js";
import { PlacementMode, type CreateTaskRequest } from "../contracts/gen/llama_orch/v1/task.js";
import { determinisms, engines, kvHints, placementModes, priorities, workloads } from "../contracts/enums.js";

/** The public TaskRequest JSON, already validated against the OpenAPI schema. */
export interface TaskRequestJson {
  task_id: string;
  session_id: string;
  workload: string;
  model_ref: string;
  engine: string;
  ctx: number;
  priority: string;
  seed?: number;
  determinism?: string;
  sampler_profile_version?: string;
  prompt?: string;
  inputs?: string[];
  max_tokens: number;
  deadline_ms: number;
  expected_tokens?: number;
  kv_hint?: string;
  placement?: {
    mode?: string;
    pin_pool_id?: string;
    prefer_pools?: string[];
    avoid_pools?: string[];
    require_device_mask?: string;
    allow_fallback?: boolean;
  };
}

export function toCreateTaskRequest(j: TaskRequestJson): CreateTaskRequest {
  const p = j.placement;
  return {
    taskId: j.task_id.toLowerCase(),
    sessionId: j.session_id.toLowerCase(),
    workload: workloads.parse(j.workload) ?? Workload.WORKLOAD_UNSPECIFIED,
    modelRef: j.model_ref,
    engine: engines.parse(j.engine) ?? Engine.ENGINE_UNSPECIFIED,
    ctx: j.ctx,
    priority: priorities.parse(j.priority) ?? Priority.PRIORITY_UNSPECIFIED,
    seed: j.seed,
    determinism: j.determinism ? (determinisms.parse(j.determinism) ?? Determinism.DETERMINISM_UNSPECIFIED) : Determinism.DETERMINISM_UNSPECIFIED,
    samplerProfileVersion: j.sampler_profile_version ?? "",
    prompt: j.prompt ?? "",
    inputs: j.inputs ?? [],
    maxTokens: j.max_tokens,
    deadlineMs: j.deadline_ms,
    expectedTokens: j.expected_tokens,
    kvHint: j.kv_hint ? (kvHints.parse(j.kv_hint) ?? KvHint.KV_HINT_UNSPECIFIED) : KvHint.KV_HINT_UNSPECIFIED,
    placement: p
      ? {
          mode: p.mode ? (placementModes.parse(p.mode) ?? PlacementMode.PLACEMENT_MODE_UNSPECIFIED) : PlacementMode.PLACEMENT_MODE_UNSPECIFIED,
          pinPoolId: p.pin_pool_id ?? "",
          preferPools: p.prefer_pools ?? [],
          avoidPools: p.avoid_pools ?? [],
          requireDeviceMask: p.require_device_mask ?? "",
          allowFallback: p.allow_fallback,
        }
      : undefined,
  };
}
