import test from "ava";
import { ErrorCode } from "../../../../contracts/gen/llama_orch/v1/common.js";
import { validateAgainst } from "../../../../contracts/openapi.js";
import { HttpError } from "../../../../edge/http-errors.js";
import {
  anthropicErrorBody,
  compatApiOf,
  failureOf,
  openAiErrorBody,
  retryHeaders,
  TaskCanceledError,
} from "../../../../edge/compat/compat-errors.js";
import { enforceFieldPolicy, ignored, refused, SUPPORTED } from "../../../../edge/compat/field-policy.js";

test("each compatible path answers in its own API's shape; native paths are left alone", (t) => {
  t.is(compatApiOf("/v1/messages"), "anthropic");
  t.is(compatApiOf("/v1/messages/count_tokens"), "anthropic");
  for (const p of ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/v1/models/mock:tiny", "/v1/rerank"]) {
    t.is(compatApiOf(p), "openai", p);
  }
  for (const p of ["/v1/tasks", "/v1/capabilities", "/v1/models/a/b", "/openapi.json"]) t.is(compatApiOf(p), undefined, p);
});

test("a refusal names the field as the client's API calls it, and validates against the documented bodies", (t) => {
  const e = HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, "no replica honours sampling.json_schema", {
    field: "/sampling/json_schema",
  });
  const f = failureOf(e, { "/sampling/json_schema": "response_format" });
  t.deepEqual(openAiErrorBody(f), {
    error: {
      message: "no replica honours sampling.json_schema",
      type: "invalid_request_error",
      param: "response_format",
      code: "INVALID_PARAMS",
    },
  });
  t.deepEqual(anthropicErrorBody(f), {
    type: "error",
    error: { type: "invalid_request_error", message: "no replica honours sampling.json_schema" },
  });
  t.is(validateAgainst("/components/schemas/OpenAIErrorResponse", openAiErrorBody(f)), null);
  t.is(validateAgainst("/components/schemas/AnthropicErrorResponse", anthropicErrorBody(f)), null);
  // A pointer no table names is spelled as a path.
  t.is(failureOf(HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, "x", { field: "/messages/2/role" })).param, "messages[2].role");
});

test("statuses map onto each API's error types; an unexpected error says nothing of its insides", (t) => {
  const type = (code: ErrorCode) => {
    const f = failureOf(HttpError.of(code, "m"));
    return [f.status, openAiErrorBody(f).error.type, anthropicErrorBody(f).error.type];
  };
  t.deepEqual(type(ErrorCode.ERROR_CODE_QUEUE_FULL_DROP_LRU), [429, "rate_limit_error", "rate_limit_error"]);
  t.deepEqual(type(ErrorCode.ERROR_CODE_POOL_UNREADY), [503, "unavailable_error", "overloaded_error"]);
  t.deepEqual(type(ErrorCode.ERROR_CODE_NOT_FOUND), [404, "not_found_error", "not_found_error"]);
  t.deepEqual(type(ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE), [413, "invalid_request_error", "request_too_large"]);
  t.deepEqual(type(ErrorCode.ERROR_CODE_DECODE_TIMEOUT), [504, "server_error", "timeout_error"]);
  const canceled = failureOf(new TaskCanceledError("t-1"));
  t.like(canceled, { status: 499, code: "CANCELED", retriable: false });
  const internal = failureOf(new Error("secret detail"));
  t.like(internal, { status: 500, code: "INTERNAL" });
  t.notRegex(internal.message, /secret/);
});

test("retry headers: retry-after-ms and Retry-After only when waiting helps; x-should-retry always", (t) => {
  const busy = failureOf(HttpError.of(ErrorCode.ERROR_CODE_ADMISSION_REJECT, "full", { retriable: true, retryAfterMs: 1500 }));
  t.deepEqual(retryHeaders(busy), { "x-should-retry": "true", "retry-after-ms": "1500", "Retry-After": "2" });
  const gone = failureOf(HttpError.of(ErrorCode.ERROR_CODE_POOL_UNAVAILABLE, "nothing serves it"));
  t.deepEqual(retryHeaders(gone), { "x-should-retry": "false" });
});

test("the field policy: supported and ignored fields pass, refused ones unless their value needs nothing, unknown ones never", (t) => {
  const policy = { a: SUPPORTED, b: ignored("harmless"), n: refused("only 1", (v) => v === 1) };
  t.notThrows(() => enforceFieldPolicy({ a: 1, b: 2, n: 1, c: null }, policy, "the API"));
  const n = t.throws(() => enforceFieldPolicy({ n: 2 }, policy, "the API"), { instanceOf: HttpError });
  t.is(n.message, "n is not supported by the API: only 1");
  t.is(n.detail.field, "/n");
  t.is(t.throws(() => enforceFieldPolicy({ zzz: true }, policy, "the API"))?.message, "zzz is not a field the API knows; remove it");
});
