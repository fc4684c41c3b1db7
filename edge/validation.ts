import { ErrorCode } from "../contracts/gen/llama_orch/v1/common.js";
import type { FieldProblem } from "../contracts/openapi.js";
import { PublicJsonError, type PublicJsonCodec } from "../contracts/public-json.js";
import { HttpError } from "./http-errors.js";

/** What an OpenAPI validator found, as the 400 INVALID_PARAMS envelope naming the field. */
export function ensureValid(problem: FieldProblem | null): void {
  if (problem) throw HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, problem.message, { field: problem.field });
}

/** A validated body as the message it stands for; what the codec still refuses is the same 400 naming the field. */
export function decodeBody<T>(codec: PublicJsonCodec<T>, body: unknown): T {
  try {
    return codec.decode(body);
  } catch (err) {
    if (err instanceof PublicJsonError) throw HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, err.message, { field: err.field });
    throw err;
  }
}
