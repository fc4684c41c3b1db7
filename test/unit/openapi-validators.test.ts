import test from "ava";
import { pathParamValidator, queryParamValidator, requestBodyValidator } from "../../contracts/openapi.js";

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

test("queryParamValidator types a query string as its schema does: integer digits become numbers, enums stay names", (t) => {
  const limit = queryParamValidator("listTasks", "limit");
  t.deepEqual(limit("20"), { value: 20, problem: null });
  t.deepEqual(limit("0"), { value: 0, problem: { field: "limit", message: "limit must be >= 1" } });
  t.deepEqual(limit("1.5").problem, { field: "limit", message: "limit must be an integer" });
  t.deepEqual(limit("ten").problem, { field: "limit", message: "limit must be an integer" });
  const state = queryParamValidator("listTasks", "state");
  t.deepEqual(state("queued"), { value: "queued", problem: null });
  t.deepEqual(state("done").problem, { field: "state", message: "state must be one of queued, running, finished" });
  t.is(queryParamValidator("listCatalogModels", "page_token")("abc").problem, null);
  t.throws(() => queryParamValidator("listTasks", "nope"), { message: /has no query parameter nope/ });
});
