import test from "ava";
import { loadApiDocuments } from "../../contracts/openapi.js";
import { isObject, operationsOf, type Json } from "./openapi-walk.js";

// The upstream OrchQueue v1 / control-plane contract we must stay compatible with.
// Written out here because the upstream files are not part of this repository.
const UPSTREAM_OPERATIONS: Array<[method: string, path: string, operationId: string]> = [
  ["post", "/v1/tasks", "createTask"],
  ["get", "/v1/tasks/{id}/stream", "streamTask"],
  ["post", "/v1/tasks/{id}/cancel", "cancelTask"],
  ["get", "/v1/sessions/{id}", "getSession"],
  ["delete", "/v1/sessions/{id}", "deleteSession"],
  ["post", "/v1/catalog/models", "createCatalogModel"],
  ["get", "/v1/catalog/models/{id}", "getCatalogModel"],
  ["delete", "/v1/catalog/models/{id}", "deleteCatalogModel"],
  ["post", "/v1/catalog/models/{id}/verify", "verifyCatalogModel"],
  ["post", "/v1/catalog/models/{id}/state", "setCatalogModelState"],
  ["post", "/v1/pools/{id}/drain", "drainPool"],
  ["post", "/v1/pools/{id}/reload", "reloadPool"],
  ["get", "/v1/pools/{id}/health", "getPoolHealth"],
  ["get", "/v1/capabilities", "getCapabilities"],
  ["post", "/v1/artifacts", "createArtifact"],
  ["get", "/v1/artifacts/{id}", "getArtifact"],
];

const UPSTREAM_SCHEMAS = [
  "Engine",
  "Workload",
  "DeterminismLevel",
  "Priority",
  "KVHint",
  "PlacementMode",
  "PlacementOverrides",
  "TaskRequest",
  "AdmissionResponse",
  "ErrorKind",
  "ErrorEnvelope",
  "SessionInfo",
  "SSEStarted",
  "SSEToken",
  "SSEMetrics",
  "SSEEnd",
  "SSEError",
  "BackpressureErrorEnvelope",
  "Capabilities",
  "ArtifactKind",
  "ArtifactRef",
  "Artifact",
  "TrustPolicy",
  "SignatureMeta",
  "SBOMRef",
  "Manifest",
  "CatalogModel",
  "DrainRequest",
  "ReloadRequest",
  "PoolHealth",
  "ReplicaSet",
];

const UPSTREAM_ERROR_KINDS = [
  "ADMISSION_REJECT",
  "QUEUE_FULL_DROP_LRU",
  "INVALID_PARAMS",
  "POOL_UNREADY",
  "POOL_UNAVAILABLE",
  "REPLICA_EXHAUSTED",
  "DECODE_TIMEOUT",
  "WORKER_RESET",
  "INTERNAL",
  "DEADLINE_UNMET",
  "MODEL_DEPRECATED",
  "UNTRUSTED_ARTIFACT",
];

test("every upstream operation exists with its method and operationId; no replicasets path", (t) => {
  const { merged } = loadApiDocuments();
  for (const [method, path, operationId] of UPSTREAM_OPERATIONS) {
    const op = merged.paths[path]?.[method];
    t.true(isObject(op), `${method.toUpperCase()} ${path} missing`);
    t.is((op as Json).operationId, operationId);
  }
  t.false(Object.keys(merged.paths).some((p) => p.startsWith("/v1/replicasets")));
  t.truthy(merged.paths["/openapi.json"]?.get);
  t.truthy(merged.paths["/metrics"]?.get);
  const ids = operationsOf(merged).map((o) => o.op.operationId);
  t.is(new Set(ids).size, ids.length, "operationIds are unique");
});

test("upstream schema names, error codes and task fields are kept", (t) => {
  const schemas = loadApiDocuments().merged.components!.schemas as Record<string, Json>;
  for (const name of UPSTREAM_SCHEMAS) t.truthy(schemas[name], `schema ${name}`);
  const kinds = schemas.ErrorKind!.enum as string[];
  for (const kind of [...UPSTREAM_ERROR_KINDS, "NOT_FOUND", "PAYLOAD_TOO_LARGE"]) t.true(kinds.includes(kind), kind);
  // The upstream engines, in their order; llama-orch adds openai (OpenAI-compatible servers) after them.
  t.deepEqual(schemas.Engine!.enum, ["llamacpp", "vllm", "tgi", "triton", "openai"]);
  t.deepEqual(schemas.TaskRequest!.required, [
    "task_id",
    "session_id",
    "workload",
    "model_ref",
    "engine",
    "ctx",
    "priority",
    "max_tokens",
    "deadline_ms",
  ]);
  t.is(schemas.TaskRequest!.additionalProperties, undefined, "extra request fields are allowed");
  t.deepEqual(schemas.SSEEnd!.required, ["tokens_out", "decode_ms"]);
  const stream = loadApiDocuments().merged.paths["/v1/tasks/{id}/stream"]!.get as Json;
  t.deepEqual(
    (stream["x-sse-events"] as Json[]).map((e) => e.name),
    // Upstream's five, with the embedding and rerank results llama-orch adds.
    ["started", "token", "metrics", "embedding", "rerank", "end", "error"],
  );
});
