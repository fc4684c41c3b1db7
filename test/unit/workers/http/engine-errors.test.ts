import test from "ava";
import { WorkerErrorKind as K } from "../../../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure } from "../../../../workers/engine-adapter.js";
import { engineErrorMessage, failureOf, kindOfSocketError, kindOfStatus } from "../../../../workers/http/engine-errors.js";

test("kindOfStatus maps engine statuses to the taxonomy", (t) => {
  const table: [number, K][] = [
    [400, K.WORKER_ERROR_KIND_INVALID_REQUEST],
    [404, K.WORKER_ERROR_KIND_INVALID_REQUEST],
    [413, K.WORKER_ERROR_KIND_INVALID_REQUEST],
    [422, K.WORKER_ERROR_KIND_INVALID_REQUEST],
    [401, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE],
    [403, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE],
    [408, K.WORKER_ERROR_KIND_TIMEOUT],
    [504, K.WORKER_ERROR_KIND_TIMEOUT],
    [429, K.WORKER_ERROR_KIND_CAPACITY],
    [503, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE],
    [424, K.WORKER_ERROR_KIND_ENGINE_ERROR],
    [500, K.WORKER_ERROR_KIND_ENGINE_ERROR],
    [502, K.WORKER_ERROR_KIND_ENGINE_ERROR],
    [507, K.WORKER_ERROR_KIND_ENGINE_ERROR],
    [200, K.WORKER_ERROR_KIND_INTERNAL],
    [302, K.WORKER_ERROR_KIND_INTERNAL],
    [418, K.WORKER_ERROR_KIND_INTERNAL],
  ];
  for (const [status, kind] of table) t.is(kindOfStatus(status), kind, String(status));
});

test("kindOfSocketError maps transport errors to the taxonomy", (t) => {
  const withCode = (code: string) => Object.assign(new Error(code), { code });
  const table: [unknown, K][] = [
    [withCode("ECONNREFUSED"), K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE],
    [withCode("ENOTFOUND"), K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE],
    [withCode("EHOSTUNREACH"), K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE],
    [withCode("EAI_AGAIN"), K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE],
    [withCode("ECONNRESET"), K.WORKER_ERROR_KIND_RESET],
    [withCode("EPIPE"), K.WORKER_ERROR_KIND_RESET],
    [new Error("socket hang up"), K.WORKER_ERROR_KIND_RESET],
    [withCode("ETIMEDOUT"), K.WORKER_ERROR_KIND_TIMEOUT],
    [new DOMException("The operation was aborted due to timeout", "TimeoutError"), K.WORKER_ERROR_KIND_TIMEOUT],
    [new TypeError("fetch failed", { cause: withCode("ECONNREFUSED") }), K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE],
    [new Error("boom"), K.WORKER_ERROR_KIND_INTERNAL],
    ["not an error", K.WORKER_ERROR_KIND_INTERNAL],
    [undefined, K.WORKER_ERROR_KIND_INTERNAL],
  ];
  for (const [err, kind] of table) t.is(kindOfSocketError(err), kind, String(err));
});

test("engineErrorMessage understands each engine's error body", (t) => {
  t.is(engineErrorMessage('{"error":{"code":500,"message":"llama.cpp failed","type":"server_error"}}'), "llama.cpp failed");
  t.is(engineErrorMessage('{"error":{"message":"bad model","type":"invalid_request_error","code":null}}'), "bad model");
  t.is(engineErrorMessage('{"object":"error","message":"vLLM says no","type":"BadRequestError","code":400}'), "vLLM says no");
  t.is(engineErrorMessage('{"error":"Input validation error","error_type":"validation"}'), "Input validation error");
  t.is(engineErrorMessage('{"error":"triton: unknown model"}'), "triton: unknown model");
  t.is(engineErrorMessage('{"detail":"Not Found"}'), "Not Found");
  t.is(engineErrorMessage(`  ${"x".repeat(300)}  `), "x".repeat(200));
  t.is(engineErrorMessage("<html>502 Bad Gateway</html>"), "<html>502 Bad Gateway</html>");
  t.is(engineErrorMessage('{"unexpected":true}'), '{"unexpected":true}');
});

test("failureOf names the path and status, redacts, and sets retriable by kind", (t) => {
  const f = failureOf({
    method: "POST",
    path: "/v1/completions",
    status: 401,
    body: '{"error":{"message":"Incorrect API key provided: sk-secret-1"}}',
    secrets: ["sk-secret-1"],
  });
  t.true(f instanceof WorkerFailure);
  t.is(f.kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  t.true(f.retriable);
  t.is(f.message, "POST /v1/completions: HTTP 401: Incorrect API key provided: [redacted]");

  const bad = failureOf({ path: "/completion", method: "POST", status: 400, body: '{"error":"too long"}' });
  t.is(bad.kind, K.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.false(bad.retriable);

  const refused = failureOf({
    path: "/health",
    cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }),
  });
  t.is(refused.message, "GET /health: connect ECONNREFUSED 127.0.0.1:1");
  t.true(refused.retriable);

  // A secret beyond the 200-character cut of a non-JSON body is still redacted, never half-shown.
  const long = failureOf({ path: "/x", status: 500, body: `${"y".repeat(195)}sk-secret-1`, secrets: ["sk-secret-1"] });
  t.false(long.message.includes("sk-"));
  t.is(failureOf({ path: "/x", kind: K.WORKER_ERROR_KIND_ENGINE_ERROR }).kind, K.WORKER_ERROR_KIND_ENGINE_ERROR);
});
