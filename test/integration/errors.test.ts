import test from "ava";
import { api, taskBody } from "../support/http.js";
import { TestSystem } from "../support/system.js";

let sys: TestSystem;

test.before(async () => {
  sys = await TestSystem.start({
    coreFlags: { "queue-capacity": "1" },
    edgeFlags: { "body-limit-bytes": "4096" },
    workers: [{ replica: "solo", slots: 1, tokensPerSecond: 50, flags: { "ctx-max": "4096" } }],
  });
});
test.after.always(async () => sys?.stop());

const post = (t: Parameters<typeof api>[0], init: Parameters<typeof api>[4]) => api(t, sys.edgeUrl, "POST", "/v1/tasks", init);

test("malformed JSON is a 400 INVALID_PARAMS", async (t) => {
  const res = await post(t, { rawBody: '{"task_id": ', headers: { "Content-Type": "application/json" } });
  t.is(res.status, 400);
  t.is(res.json.code, "INVALID_PARAMS");
  t.regex(res.json.message, /not valid JSON/);
});

test("a body that is not an object is a 400", async (t) => {
  const res = await post(t, { rawBody: "[1,2]", headers: { "Content-Type": "application/json" } });
  t.is(res.status, 400);
  t.is(res.json.code, "INVALID_PARAMS");
});

test("an empty body is a 400", async (t) => {
  const res = await post(t, { rawBody: "", headers: { "Content-Type": "application/json" } });
  t.is(res.status, 400);
});

test("a non-JSON content type is a 400 naming the problem", async (t) => {
  const res = await post(t, { rawBody: "task_id=1", headers: { "Content-Type": "application/x-www-form-urlencoded" } });
  t.is(res.status, 400);
  t.regex(res.json.message, /Content-Type/);
});

test("an invalid uuid names the field", async (t) => {
  const res = await post(t, { body: taskBody({ task_id: "not-a-uuid" }) });
  t.is(res.status, 400);
  t.is(res.json.code, "INVALID_PARAMS");
  t.is(res.json.field, "/task_id");
  t.regex(res.json.message, /task_id/);
});

test("wrong types and missing fields name the field", async (t) => {
  const wrongType = await post(t, { body: taskBody({ ctx: "big" }) });
  t.is(wrongType.status, 400);
  t.is(wrongType.json.field, "/ctx");
  const { session_id: _omit, ...missing } = taskBody();
  const res = await post(t, { body: missing });
  t.is(res.status, 400);
  t.is(res.json.field, "/session_id");
  const badEnum = await post(t, { body: taskBody({ placement: { mode: "sideways" } }) });
  t.is(badEnum.status, 400);
  t.is(badEnum.json.field, "/placement/mode");
});

test("a body over the limit is a 413 PAYLOAD_TOO_LARGE", async (t) => {
  const res = await post(t, { body: taskBody({ prompt: "x".repeat(10_000) }) });
  t.is(res.status, 413);
  t.is(res.json.code, "PAYLOAD_TOO_LARGE");
});

test("an engine no pool serves is a 503 POOL_UNAVAILABLE", async (t) => {
  const res = await post(t, { body: taskBody({ engine: "vllm" }) });
  t.is(res.status, 503);
  t.is(res.json.code, "POOL_UNAVAILABLE");
  t.is(res.json.engine, "vllm");
});

test("ctx beyond what the pool serves is a 400 naming ctx", async (t) => {
  const res = await post(t, { body: taskBody({ ctx: 100_000 }) });
  t.is(res.status, 400);
  t.is(res.json.field, "/ctx");
});

test("a duplicate task_id is a 400", async (t) => {
  const body = taskBody({ max_tokens: 1 });
  t.is((await post(t, { body })).status, 202);
  const again = await post(t, { body });
  t.is(again.status, 400);
  t.is(again.json.field, "/task_id");
});

test("unknown task ids are 404 with the envelope; invalid ones are 400", async (t) => {
  const id = crypto.randomUUID();
  const s = await api(t, sys.edgeUrl, "GET", `/v1/tasks/${id}/stream`);
  t.is(s.status, 404);
  t.is(s.json.code, "NOT_FOUND");
  const c = await api(t, sys.edgeUrl, "POST", `/v1/tasks/${id}/cancel`);
  t.is(c.status, 404);
  t.is(c.json.code, "NOT_FOUND");
  const bad = await api(t, sys.edgeUrl, "GET", `/v1/tasks/nope/stream`);
  t.is(bad.status, 400);
  t.is(bad.json.code, "INVALID_PARAMS");
});

test("a full queue answers 429 ADMISSION_REJECT with Retry-After, X-Backoff-Ms and the policy", async (t) => {
  // One slot and a queue of one: the third long task cannot be admitted.
  const running = taskBody({ max_tokens: 1000 });
  const queued = taskBody({ max_tokens: 1000 });
  t.is((await post(t, { body: running })).status, 202);
  t.is((await post(t, { body: queued })).status, 202);
  const res = await post(t, { body: taskBody() });
  t.is(res.status, 429);
  t.is(res.json.code, "ADMISSION_REJECT");
  t.is(res.json.policy_label, "reject");
  t.true(res.json.retriable);
  t.regex(res.headers.get("retry-after") ?? "", /^\d+$/);
  t.is(Number(res.headers.get("x-backoff-ms")), res.json.retry_after_ms);
  for (const b of [queued, running]) t.is((await api(t, sys.edgeUrl, "POST", `/v1/tasks/${b.task_id}/cancel`)).status, 204);
});

test("unknown routes get the error envelope", async (t) => {
  const res = await fetch(sys.edgeUrl + "/v1/nothing-here");
  t.is(res.status, 404);
  t.is(((await res.json()) as { code: string }).code, "NOT_FOUND");
  t.truthy(res.headers.get("x-correlation-id"));
});

test("an oversized correlation id is replaced, not echoed", async (t) => {
  const res = await fetch(sys.edgeUrl + "/openapi.json", { headers: { "X-Correlation-Id": "x".repeat(500) } });
  t.not(res.headers.get("x-correlation-id"), "x".repeat(500));
  t.is(res.status, 200);
});

test.after("no request in this file made any process log an error-level line", (t) => {
  const errors = sys.allLogLines().filter((l) => l.includes('"level":50') || l.includes('"level":60'));
  t.deepEqual(errors, []);
});
