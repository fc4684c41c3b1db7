import { ErrorCode } from "../contracts/gen/llama_orch/v1/common.js";
import type { FieldProblem } from "../contracts/openapi.js";
import { HttpError } from "./http-errors.js";

/** What an OpenAPI validator found, as the 400 INVALID_PARAMS envelope naming the field. */
export function ensureValid(problem: FieldProblem | null): void {
  if (problem) throw HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, problem.message, { field: problem.field });
}
