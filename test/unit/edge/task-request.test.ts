import test from "ava";
import { ErrorCode, Engine, Priority, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { requestBodyValidator } from "../../../contracts/openapi.js";
import { HttpError } from "../../../edge/http-errors.js";
import { toCreateTaskRequest } from "../../../edge/task-request.js";

const body = {
  task_id: "6F1C2A0E-7D4B-4E58-9B0A-2F3C4D5E6A7B",
  session_id: "3A9E8D7C-1B2F-4C6D-8E0F-A1B2C3D4E5F6",
  workload: "completion",
  model_ref: "mock:tiny",
  engine: "llamacpp",
  ctx: 4096,
  priority: "interactive",
  max_tokens: 32,
  deadline_ms: 30_000,
};

test("a validated TaskRequest becomes its CreateTaskRequest, ids lower-cased", (t) => {
  t.is(requestBodyValidator("createTask")(body), null);
  const r = toCreateTaskRequest(body);
  t.is(r.taskId, body.task_id.toLowerCase());
  t.is(r.sessionId, body.session_id.toLowerCase());
  t.like(r, {
    workload: Workload.WORKLOAD_COMPLETION,
    engine: Engine.ENGINE_LLAMACPP,
    priority: Priority.PRIORITY_INTERACTIVE,
    ctx: 4096,
    maxTokens: 32,
    deadlineMs: 30_000,
  });
  t.is(r.seed, undefined);
  t.is(r.placement, undefined);
});

test("what the schema lets through but the message cannot hold is a 400 INVALID_PARAMS naming the field", (t) => {
  const huge = { ...body, seed: 2 ** 64 };
  // Issue 12: the schema now bounds int64 fields to safe integers too; the codec still refuses on its own.
  t.like(requestBodyValidator("createTask")(huge), { field: "/seed" }, "the schema refuses it first");
  const err = t.throws(() => toCreateTaskRequest(huge), { instanceOf: HttpError });
  t.is(err.status, 400);
  t.is(err.detail.code, ErrorCode.ERROR_CODE_INVALID_PARAMS);
  t.is(err.detail.field, "/seed");
});
