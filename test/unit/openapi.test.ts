import test from "ava";
import {
  apiVersion,
  loadApiDocuments,
  pathParamValidator,
  requestBodyValidator,
  validateAgainst,
  type OpenApiDoc,
} from "../../contracts/openapi.js";
import { checkResponse } from "../support/openapi-check.js";
import { parseSse } from "../support/sse-parse.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

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

const METHODS = ["get", "put", "post", "delete", "patch"];

function operationsOf(doc: OpenApiDoc): Array<{ method: string; path: string; op: Json; pointer: string }> {
  const out = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (isObject(op)) out.push({ method, path, op, pointer: `/paths/${path.replace(/~/g, "~0").replace(/\//g, "~1")}/${method}` });
    }
  }
  return out;
}

function deref(doc: OpenApiDoc, node: unknown): unknown {
  while (isObject(node) && typeof node.$ref === "string") {
    node = node.$ref
      .slice(2)
      .split("/")
      .reduce<unknown>((at, t) => (isObject(at) ? at[t.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined), doc);
  }
  return node;
}

function walk(node: unknown, pointer: string, visit: (node: Json, pointer: string) => void): void {
  if (Array.isArray(node)) node.forEach((v, i) => walk(v, `${pointer}/${i}`, visit));
  if (!isObject(node)) return;
  visit(node, pointer);
  for (const [k, v] of Object.entries(node)) {
    // Example payloads are data, not contract structure.
    if (k === "example" || k === "value") continue;
    walk(v, `${pointer}/${k.replace(/~/g, "~0").replace(/\//g, "~1")}`, visit);
  }
}

const GOOD_TASK = {
  task_id: "6f1c2a0e-7d4b-4e58-9b0a-2f3c4d5e6a7b",
  session_id: "3a9e8d7c-1b2f-4c6d-8e0f-a1b2c3d4e5f6",
  workload: "completion",
  model_ref: "hf:TinyOrg/tiny-chat-GGUF/tiny-chat.q4_0.gguf",
  engine: "llamacpp",
  ctx: 2048,
  priority: "interactive",
  max_tokens: 16,
  deadline_ms: 5000,
};
const TASK_ID = GOOD_TASK.task_id;

test("both documents parse as OpenAPI 3.0 with one shared version", (t) => {
  const { data, control, merged } = loadApiDocuments();
  for (const doc of [data, control, merged]) t.regex(doc.openapi, /^3\.0\.\d+$/);
  t.is(data.info.version, "1.0.0");
  t.is(control.info.version, data.info.version);
  t.is(apiVersion(), "1.0.0");
  t.is(merged.info.title, "llama-orch API");
  t.is(Object.keys(merged.paths).length, Object.keys(data.paths).length + Object.keys(control.paths).length);
  t.is(loadApiDocuments(), loadApiDocuments(), "documents are cached");
});

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
    ["started", "token", "metrics", "end", "error"],
  );
});

test("each document stands alone: all its $refs resolve inside it", (t) => {
  const { data, control } = loadApiDocuments();
  for (const doc of [data, control]) {
    walk(doc, "", (node, pointer) => {
      if (typeof node.$ref === "string") t.truthy(deref(doc, node), `${pointer}: ${node.$ref}`);
    });
  }
});

test("every response declares X-Correlation-Id; error responses carry an envelope", (t) => {
  const { merged } = loadApiDocuments();
  for (const { method, path, op } of operationsOf(merged)) {
    const where = `${method.toUpperCase()} ${path}`;
    const responses = op.responses as Json;
    t.truthy(responses["500"], `${where}: 500`);
    if (path.includes("{id}")) t.truthy(responses["404"], `${where}: 404`);
    if (op.requestBody) {
      t.truthy(responses["413"], `${where}: 413`);
      t.truthy(responses["400"], `${where}: 400`);
    }
    const params = ((op.parameters as unknown[]) ?? []).map((p) => deref(merged, p) as Json);
    if (params.some((p) => p.in === "path" && (p.schema as Json).format === "uuid")) t.truthy(responses["400"], `${where}: 400`);
    for (const [status, raw] of Object.entries(responses)) {
      const response = deref(merged, raw) as Json;
      const headers = (response.headers ?? {}) as Json;
      t.truthy(headers["X-Correlation-Id"], `${where} ${status}: X-Correlation-Id`);
      if (Number(status) >= 400) {
        const media = (response.content as Record<string, Json> | undefined)?.["application/json"];
        const expected = status === "429" ? "#/components/schemas/BackpressureErrorEnvelope" : "#/components/schemas/ErrorEnvelope";
        t.is((media?.schema as Json | undefined)?.$ref, expected, `${where} ${status}: envelope`);
      }
    }
    const tooMany = deref(merged, responses["429"]) as Json | undefined;
    if (tooMany) for (const h of ["Retry-After", "X-Backoff-Ms"]) t.truthy((tooMany.headers as Json)[h], `${where} 429: ${h}`);
  }
});

test("every operation has a request example and a response example", (t) => {
  const { merged } = loadApiDocuments();
  const hasExample = (node: unknown) => isObject(node) && ("example" in node || "examples" in node);
  for (const { method, path, op } of operationsOf(merged)) {
    const params = ((op.parameters as unknown[]) ?? []).map((p) => deref(merged, p));
    const body = deref(merged, op.requestBody) as Json | undefined;
    const bodyMedia = Object.values((body?.content ?? {}) as Json);
    t.true([...params, ...bodyMedia].some(hasExample), `${method.toUpperCase()} ${path}: request example`);
    const responseMedia = Object.values(op.responses as Json).flatMap((r) =>
      Object.values(((deref(merged, r) as Json).content ?? {}) as Json),
    );
    t.true(responseMedia.some(hasExample), `${method.toUpperCase()} ${path}: response example`);
  }
});

test("every example validates against its schema", (t) => {
  const { merged } = loadApiDocuments();
  let checked = 0;
  const check = (pointer: string, value: unknown, what: string) => {
    checked++;
    t.is(validateAgainst(pointer, value)?.message, undefined, what);
  };
  walk(merged, "", (node, pointer) => {
    // Media types, parameters and headers: examples sit next to `schema`.
    if (isObject(node.schema)) {
      if ("example" in node) check(`${pointer}/schema`, node.example, `${pointer}/example`);
      for (const [name, ex] of Object.entries((node.examples ?? {}) as Record<string, Json>)) {
        check(`${pointer}/schema`, ex.value, `${pointer}/examples/${name}`);
      }
    }
    // Schema objects carry their own example.
    const isSchema = /\/schema$|^\/components\/schemas\/[^/]+$|\/properties\/[^/]+$|\/items$|\/allOf\/\d+$/.test(pointer);
    if (isSchema && "example" in node) check(pointer, node.example, `${pointer}/example`);
  });
  t.true(checked >= 40, `only ${checked} examples found`);
});

test("documented response examples pass checkResponse, SSE examples included", (t) => {
  const { merged } = loadApiDocuments();
  let checked = 0;
  for (const { method, path, op } of operationsOf(merged)) {
    const params = ((op.parameters as unknown[]) ?? []).map((p) => deref(merged, p) as Json);
    const concrete = path.replace(/\{([^}]+)\}/g, (_, name: string) => String(params.find((p) => p.name === name)?.example));
    for (const [status, raw] of Object.entries(op.responses as Json)) {
      const response = deref(merged, raw) as Json;
      const headers: Record<string, string> = {};
      for (const [name, h] of Object.entries((response.headers ?? {}) as Json)) {
        const header = deref(merged, h) as Json;
        if (header.required) headers[name] = String((header.example as string | number | undefined) ?? "1");
      }
      for (const [type, media] of Object.entries((response.content ?? {}) as Record<string, Json>)) {
        for (const ex of Object.values((media.examples ?? {}) as Record<string, Json>)) {
          const body = typeof ex.value === "string" ? ex.value : JSON.stringify(ex.value);
          t.deepEqual(checkResponse(method, concrete, { status: Number(status), headers: { ...headers, "Content-Type": type }, body }), []);
          checked++;
        }
      }
    }
  }
  t.true(checked > 20);
});

test("the capabilities example advertises the contract version", (t) => {
  const op = loadApiDocuments().merged.paths["/v1/capabilities"]!.get as Json;
  const media = ((op.responses as Json)["200"] as Json).content as Record<string, Json>;
  for (const ex of Object.values(media["application/json"]!.examples as Record<string, Json>)) {
    t.is((ex.value as Json).api_version, apiVersion());
  }
});

test("requestBodyValidator(createTask) reports the first problem as a JSON pointer", (t) => {
  const validate = requestBodyValidator("createTask");
  t.is(validate(GOOD_TASK), null);
  t.is(validate({ ...GOOD_TASK, surplus_field: 1, placement: { mode: "auto" } }), null);
  t.deepEqual(validate({ ...GOOD_TASK, task_id: "not-a-uuid" }), { field: "/task_id", message: "task_id must be a uuid" });
  const { session_id: _omitted, ...noSession } = GOOD_TASK;
  t.deepEqual(validate(noSession), { field: "/session_id", message: "missing required field session_id" });
  t.deepEqual(validate({ ...GOOD_TASK, ctx: "abc" }), { field: "/ctx", message: "ctx must be an integer" });
  t.is(validate({ ...GOOD_TASK, ctx: 0 })?.field, "/ctx");
  t.deepEqual(validate({ ...GOOD_TASK, priority: "urgent" }), {
    field: "/priority",
    message: "priority must be one of interactive, batch",
  });
  t.deepEqual(validate({ ...GOOD_TASK, placement: { mode: "anywhere" } }), {
    field: "/placement/mode",
    message: "placement.mode must be one of pin, prefer, auto",
  });
  for (const body of [[GOOD_TASK], null, "text", 3]) {
    t.deepEqual(validate(body), { field: "", message: "request body must be a JSON object" });
  }
});

test("requestBodyValidator covers control-plane bodies and refuses operations without one", (t) => {
  t.is(requestBodyValidator("drainPool")({ deadline_ms: 1000 }), null);
  t.is(requestBodyValidator("drainPool")({})?.field, "/deadline_ms");
  t.is(requestBodyValidator("setCatalogModelState")({ state: "Paused" })?.field, "/state");
  t.throws(() => requestBodyValidator("getSession"));
  t.throws(() => requestBodyValidator("noSuchOperation"));
});

test("pathParamValidator checks uuid ids", (t) => {
  for (const op of ["streamTask", "cancelTask", "getSession"]) {
    const validate = pathParamValidator(op, "id");
    t.is(validate(TASK_ID), null);
    t.deepEqual(validate("123"), { field: "id", message: "id must be a uuid" });
  }
  t.is(pathParamValidator("getPoolHealth", "id")("pool-a"), null);
  t.throws(() => pathParamValidator("streamTask", "nope"));
});

const JSON_HEADERS = { "Content-Type": "application/json; charset=utf-8", "X-Correlation-Id": "c-1" };
const ADMITTED = JSON.stringify({ task_id: TASK_ID, queue_position: 0, predicted_start_ms: 10, backoff_ms: 0 });

test("checkResponse accepts a conforming 202 and rejects a missing correlation id", (t) => {
  t.deepEqual(checkResponse("POST", "/v1/tasks", { status: 202, headers: JSON_HEADERS, body: ADMITTED }), []);
  t.deepEqual(checkResponse("POST", "/v1/tasks", { status: 202, headers: new Headers(JSON_HEADERS), body: ADMITTED }), []);
  const problems = checkResponse("POST", "/v1/tasks", { status: 202, headers: { "Content-Type": "application/json" }, body: ADMITTED });
  t.is(problems.length, 1);
  t.regex(problems[0]!, /X-Correlation-Id/);
});

test("checkResponse rejects undeclared statuses, bad bodies and wrong content types", (t) => {
  t.regex(checkResponse("POST", "/v1/tasks", { status: 418, headers: JSON_HEADERS, body: "{}" })[0]!, /not declared/);
  t.regex(checkResponse("POST", "/v1/tasks", { status: 202, headers: JSON_HEADERS, body: "{}" })[0]!, /missing required field task_id/);
  t.regex(
    checkResponse("POST", "/v1/tasks", { status: 202, headers: { ...JSON_HEADERS, "Content-Type": "text/html" }, body: ADMITTED })[0]!,
    /content-type/,
  );
  t.regex(checkResponse("GET", "/v1/nowhere", { status: 200, headers: JSON_HEADERS, body: "{}" })[0]!, /no such operation/);
  t.deepEqual(checkResponse("POST", `/v1/tasks/${TASK_ID}/cancel`, { status: 204, headers: { "X-Correlation-Id": "c" }, body: "" }), []);
  t.regex(
    checkResponse("DELETE", `/v1/sessions/${TASK_ID}`, { status: 204, headers: { "X-Correlation-Id": "c" }, body: "x" })[0]!,
    /empty/,
  );
  const busy = JSON.stringify({ code: "ADMISSION_REJECT", message: "full", policy_label: "reject", retriable: true, retry_after_ms: 1000 });
  t.deepEqual(
    checkResponse("POST", "/v1/tasks", {
      status: 429,
      headers: { ...JSON_HEADERS, "Retry-After": "1", "X-Backoff-Ms": "1000" },
      body: busy,
    }),
    [],
  );
  // Retry-After is optional in the contract (an exhausted session has nothing to wait for); X-Correlation-Id never is.
  t.deepEqual(checkResponse("POST", "/v1/tasks", { status: 429, headers: JSON_HEADERS, body: busy }), []);
  t.regex(
    checkResponse("POST", "/v1/tasks", { status: 429, headers: { "Content-Type": "application/json" }, body: busy }).join("\n"),
    /X-Correlation-Id/,
  );
  const unlabeled = JSON.stringify({ code: "ADMISSION_REJECT", message: "full" });
  t.regex(
    checkResponse("POST", "/v1/tasks", {
      status: 429,
      headers: { ...JSON_HEADERS, "Retry-After": "1", "X-Backoff-Ms": "1000" },
      body: unlabeled,
    })[0]!,
    /policy_label/,
  );
  const notFound = JSON.stringify({ code: "NOT_FOUND", message: "no such pool" });
  t.deepEqual(checkResponse("GET", "/v1/pools/pool-z/health?x=1", { status: 404, headers: JSON_HEADERS, body: notFound }), []);
});

const SSE_HEADERS = { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Correlation-Id": "c-2" };
const frame = (id: number, event: string, data: unknown) => `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

test("checkResponse validates SSE frames against x-sse-events", (t) => {
  const path = `/v1/tasks/${TASK_ID}/stream`;
  const good =
    ": keep-alive\n\n" +
    frame(0, "started", { queue_position: 0, predicted_start_ms: 5 }) +
    frame(1, "token", { t: "Hi", i: 0 }) +
    frame(2, "end", { tokens_out: 1, decode_ms: 3, decode_time_ms: 3, stop_reason: "eos" });
  t.deepEqual(checkResponse("GET", path, { status: 200, headers: SSE_HEADERS, body: good }), []);

  const missingI = frame(0, "started", { queue_position: 0, predicted_start_ms: 5 }) + frame(1, "token", { t: "Hi" });
  const problems = checkResponse("GET", path, { status: 200, headers: SSE_HEADERS, body: missingI });
  t.is(problems.length, 1);
  t.regex(problems[0]!, /token.*missing required field i/);

  t.regex(checkResponse("GET", path, { status: 200, headers: SSE_HEADERS, body: frame(0, "tick", {}) })[0]!, /unknown event/);
  t.regex(
    checkResponse("GET", path, {
      status: 200,
      headers: SSE_HEADERS,
      body: frame(3, "token", { t: "a", i: 0 }) + frame(3, "token", { t: "b", i: 1 }),
    })[0]!,
    /does not increase/,
  );
  const { "Cache-Control": _dropped, ...noCache } = SSE_HEADERS;
  t.regex(checkResponse("GET", path, { status: 200, headers: noCache, body: good })[0]!, /Cache-Control/);
});

test("parseSse handles comments, CRLF, multi-line data and a missing final blank line", (t) => {
  const frames = parseSse(':hello\r\nid: 1\r\nevent: token\r\ndata: {"t":\r\ndata: "x","i":0}\r\n\r\nevent: end\ndata:{}');
  t.deepEqual(frames, [
    { event: "token", data: ['{"t":', '"x","i":0}'], id: "1" },
    { event: "end", data: ["{}"] },
  ]);
});
