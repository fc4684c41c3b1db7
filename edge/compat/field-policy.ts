import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { HttpError } from "../http-errors.js";

/**
 * What a compatible endpoint does with each top-level request field. A field
 * it cannot honour is refused with a 400 that says why, never dropped; only
 * fields whose absence changes nothing the client can observe are ignored,
 * and each says why. A field in no list is refused as unknown.
 */
export type FieldRule =
  | { kind: "supported" }
  | { kind: "ignored"; why: string }
  /** Refused unless `accepts` says the value is one that needs nothing (e.g. n: 1, logprobs: false). */
  | { kind: "refused"; why: string; accepts?: (value: unknown) => boolean };

export type FieldPolicy = Readonly<Record<string, FieldRule>>;

export const SUPPORTED: FieldRule = { kind: "supported" };
export const ignored = (why: string): FieldRule => ({ kind: "ignored", why });
export const refused = (why: string, accepts?: (value: unknown) => boolean): FieldRule => ({ kind: "refused", why, accepts });

/** Throws the 400 for the first field the policy refuses; a null value counts as absent, as the SDKs send it. */
export function enforceFieldPolicy(body: Record<string, unknown>, policy: FieldPolicy, api: string): void {
  for (const [name, value] of Object.entries(body)) {
    if (value === null || value === undefined) continue;
    const rule = Object.hasOwn(policy, name) ? policy[name] : undefined;
    if (!rule) throw invalidField(`/${name}`, `${name} is not a field ${api} knows; remove it`);
    if (rule.kind === "refused" && !rule.accepts?.(value)) {
      throw invalidField(`/${name}`, `${name} is not supported by ${api}: ${rule.why}`);
    }
  }
}

export function invalidField(field: string, message: string): HttpError {
  return HttpError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, message, { field });
}

/** The body without its null members: the SDKs send null for "not set". */
export function withoutNulls(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null));
}
