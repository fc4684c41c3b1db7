import type { Context } from "koa";
import type { FieldProblem } from "../../contracts/openapi.js";
import { readJsonBody, type JsonBodyLimits } from "../middleware/json-body.js";
import { ensureValid } from "../validation.js";
import { withoutNulls } from "./field-policy.js";

/**
 * A compatible endpoint's body: read within the size and depth limits, its top-level
 * nulls dropped (the SDKs send null for "not set"), then checked against its
 * compat.yaml schema.
 */
export async function compatBody(
  ctx: Context,
  limits: JsonBodyLimits,
  validate: (body: unknown) => FieldProblem | null,
): Promise<Record<string, unknown>> {
  const raw = await readJsonBody(ctx, limits);
  const body = typeof raw === "object" && raw !== null && !Array.isArray(raw) ? withoutNulls(raw as Record<string, unknown>) : raw;
  ensureValid(validate(body));
  return body as Record<string, unknown>;
}
