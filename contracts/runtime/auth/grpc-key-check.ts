import type { ServiceDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";
import { ErrorCode } from "../../gen/llama_orch/v1/common.js";
import { bearerOf } from "../api-key.js";
import type { Logger } from "../logger.js";
import { OrchError } from "../metadata.js";
import type { KeyRing } from "./key-ring.js";
import { mayAct, roleRefusalMessage, type Principal, type Role } from "./roles.js";

interface CallLike {
  metadata: { get(key: string): unknown[] };
  emit?(event: string, err: unknown): boolean;
}

/** Who made a call that passed the key check; undefined when the server requires no key. */
const principals = new WeakMap<object, Principal>();

export function principalOf(call: object): Principal | undefined {
  return principals.get(call);
}

export interface KeyCheck {
  ring: KeyRing;
  /** The role a method (by its implementation name, e.g. "drainPool") needs. */
  roleOf(method: string): Role;
  logger?: Logger;
}

/**
 * Wraps a service implementation so every call must carry `authorization:
 * Bearer <key>` metadata with a key whose role may make it: missing is
 * UNAUTHENTICATED (UNAUTHORIZED), unknown PERMISSION_DENIED (FORBIDDEN), the
 * wrong role PERMISSION_DENIED (INSUFFICIENT_ROLE). The caller's principal is
 * left for the handler (principalOf). Reflection and health are other
 * services, which stay open for operators' tools.
 */
export function requireKey(
  definition: ServiceDefinition,
  implementation: UntypedServiceImplementation,
  check: KeyCheck,
): UntypedServiceImplementation {
  if (!check.ring.required) return implementation;
  const wrapped: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(implementation)) {
    const method = definition[name];
    const needed = check.roleOf(name);
    const refuse = (call: CallLike): OrchError | undefined => {
      const outcome = authorize(check, call, needed, `call ${method?.path ?? name}`);
      if (outcome instanceof OrchError) return outcome;
      principals.set(call, outcome);
      return undefined;
    };
    const h = handler as (...args: unknown[]) => void;
    wrapped[name] = (
      method?.responseStream
        ? (call: CallLike) => {
            const err = refuse(call);
            if (err) call.emit!("error", err.toServiceError());
            else h(call);
          }
        : (call: CallLike, callback: (e: unknown, v: unknown) => void) => {
            const err = refuse(call);
            if (err) callback(err.toServiceError(), null);
            else h(call, callback);
          }
    ) as never;
  }
  return wrapped;
}

function authorize(check: KeyCheck, call: CallLike, needed: Role, what: string): Principal | OrchError {
  const raw = call.metadata.get("authorization")[0];
  const presented = bearerOf(typeof raw === "string" ? raw : undefined);
  if (presented === undefined)
    return OrchError.of(ErrorCode.ERROR_CODE_UNAUTHORIZED, "an API key is required: send authorization: Bearer <key>");
  const principal = check.ring.authenticate(presented);
  if (!principal) return OrchError.of(ErrorCode.ERROR_CODE_FORBIDDEN, "the API key is not valid");
  if (!mayAct(principal, needed)) {
    const message = roleRefusalMessage(principal, needed, what);
    check.logger?.warn({ event: "call_refused", identity: principal.identity, method: what, needed_role: needed }, message);
    return OrchError.of(ErrorCode.ERROR_CODE_INSUFFICIENT_ROLE, message);
  }
  return principal;
}
