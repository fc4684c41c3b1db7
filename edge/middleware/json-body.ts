import getRawBody from "raw-body";
import type { Context } from "koa";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { HttpError } from "../http-errors.js";
import { tooDeepAt } from "./json-depth.js";

/** What a JSON request body may be: its size, and how deep its arrays and objects nest. */
export interface JsonBodyLimits {
  bodyLimitBytes: number;
  jsonMaxDepth: number;
}

/**
 * Reads and parses a JSON request body, refusing bodies over the size limit
 * (413 PAYLOAD_TOO_LARGE), anything that is not JSON, and JSON nested deeper
 * than the depth limit (400 INVALID_PARAMS): nothing after this point (the
 * schema check, the codec, core) sees deeper input.
 */
export async function readJsonBody(ctx: Context, limits: JsonBodyLimits): Promise<unknown> {
  const value = parseJson(await readText(ctx, limits.bodyLimitBytes));
  const at = tooDeepAt(value, limits.jsonMaxDepth);
  if (at !== undefined) {
    throw HttpError.of(
      ErrorCode.ERROR_CODE_INVALID_PARAMS,
      `request body nests arrays and objects deeper than ${limits.jsonMaxDepth} levels at ${at}`,
      {
        field: at,
      },
    );
  }
  return value;
}

async function readText(ctx: Context, limitBytes: number): Promise<string> {
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
  return text;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `request body is not valid JSON: ${(err as Error).message}`);
  }
}
