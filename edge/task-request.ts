import type { CreateTaskRequest } from "../contracts/gen/llama_orch/v1/task.js";
import { publicJson } from "../contracts/public-json.js";
import { decodeBody } from "./validation.js";

const createTaskRequestJson = publicJson<CreateTaskRequest>("llama_orch.v1.CreateTaskRequest");

/**
 * A TaskRequest body, already validated against the OpenAPI schema, as the
 * CreateTaskRequest it stands for. The ids are lower-cased so that a uuid
 * names one task (and one session) however a client spells it.
 */
export function toCreateTaskRequest(body: unknown): CreateTaskRequest {
  const request = decodeBody(createTaskRequestJson, body);
  return { ...request, taskId: request.taskId.toLowerCase(), sessionId: request.sessionId.toLowerCase() };
}
