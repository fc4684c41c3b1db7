import getRawBody from "raw-body";
import type { Context } from "koa";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { HttpError } from "../http-errors.js";

/**
 * Reads and parses a JSON request body, refusing bodies over `limitBytes`
 * (413 PAYLOAD_TOO_LARGE) and anything that is not JSON (400 INVALID_PARAMS).
 */
export async function readJsonBody(ctx: Context, limitBytes: number): Promise<unknown> {
  const type = ctx.get("Content-Type");
  if (type && !/^application\/([\w.+-]*\+)?json\b/i.test(type)) {
    throw HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `Content-Type must be application/json, got ${type}`);
  }
  const declared = Number(ctx.get("Content-Length"));
  if (Number.isFinite(declared) && declared > limitBytes) {
    throw HttpError.of(
      ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE,
      `request body of ${declared} bytes exceeds the limit of ${limitBytes} bytes`,
    );
  }
  let text: string;
  try {
    text = await getRawBody(ctx.req, { limit: limitBytes, encoding: "utf8" });
  } catch (err) {
    const type = (err as { type?: string }).type;
    if (type === "entity.too.large") {
      throw HttpError.of(ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE, `request body exceeds the limit of ${limitBytes} bytes`);
    }
    throw HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `could not read the request body: ${(err as Error).message}`);
  }
  if (text.trim() === "") throw HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, "request body is empty; a JSON object is required");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `request body is not valid JSON: ${(err as Error).message}`);
  }
}
