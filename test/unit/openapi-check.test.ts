import test from "ava";
import { checkResponse } from "../support/openapi-check.js";
import { parseSse } from "../support/sse-parse.js";

const TASK_ID = "6f1c2a0e-7d4b-4e58-9b0a-2f3c4d5e6a7b";

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

test("only a last CORE_UNAVAILABLE error frame, the edge's own, may go without an id", (t) => {
  const path = `/v1/tasks/${TASK_ID}/stream`;
  const start = frame(1, "started", { queue_position: 0, predicted_start_ms: 5 }) + frame(2, "token", { t: "Hi", i: 0 });
  const lost = (code: string) => `event: error\ndata: ${JSON.stringify({ code, message: "core away", retriable: true })}\n\n`;
  t.deepEqual(checkResponse("GET", path, { status: 200, headers: SSE_HEADERS, body: start + lost("CORE_UNAVAILABLE") }), []);
  t.regex(checkResponse("GET", path, { status: 200, headers: SSE_HEADERS, body: start + lost("WORKER_RESET") })[0]!, /id must be/);
  const notLast = lost("CORE_UNAVAILABLE") + frame(3, "token", { t: "x", i: 1 });
  t.regex(checkResponse("GET", path, { status: 200, headers: SSE_HEADERS, body: start + notLast })[0]!, /id must be/);
});

test("parseSse handles comments, CRLF, multi-line data and a missing final blank line", (t) => {
  const frames = parseSse(':hello\r\nid: 1\r\nevent: token\r\ndata: {"t":\r\ndata: "x","i":0}\r\n\r\nevent: end\ndata:{}');
  t.deepEqual(frames, [
    { event: "token", data: ['{"t":', '"x","i":0}'], id: "1" },
    { event: "end", data: ["{}"] },
  ]);
});

test("a method the path does not declare must be 405 with Allow naming the declared methods and the METHOD_NOT_ALLOWED envelope", (t) => {
  const body = JSON.stringify({ code: "METHOD_NOT_ALLOWED", message: "method PUT is not allowed" });
  const path = `/v1/tasks/${TASK_ID}/stream`;
  t.deepEqual(checkResponse("PUT", path, { status: 405, headers: { ...JSON_HEADERS, Allow: "HEAD, GET" }, body }), []);
  t.regex(checkResponse("PUT", path, { status: 405, headers: { ...JSON_HEADERS, Allow: "GET" }, body })[0]!, /Allow is "GET"/);
  const wrongCode = JSON.stringify({ code: "INVALID_PARAMS", message: "no" });
  t.regex(
    checkResponse("PUT", path, { status: 405, headers: { ...JSON_HEADERS, Allow: "GET, HEAD" }, body: wrongCode })[0]!,
    /not METHOD_NOT_ALLOWED/,
  );
  t.regex(checkResponse("PUT", path, { status: 400, headers: JSON_HEADERS, body: wrongCode })[0]!, /no such operation/);
  t.regex(checkResponse("PUT", "/v1/nowhere", { status: 405, headers: JSON_HEADERS, body })[0]!, /no such operation/);
});
