import type { ServiceDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";
import { ErrorCode } from "../gen/llama_orch/v1/common.js";
import { bearerOf, keyMatches } from "./api-key.js";
import { OrchError } from "./metadata.js";

interface CallLike {
  metadata: { get(key: string): unknown[] };
  emit?(event: string, err: unknown): boolean;
}

/**
 * Wraps a service implementation so every call must carry
 * `authorization: Bearer <key>` metadata (UNAUTHENTICATED when missing,
 * PERMISSION_DENIED when wrong). Reflection and health are left open, as
 * operators' tools expect.
 */
export function requireApiKey(
  definition: ServiceDefinition,
  implementation: UntypedServiceImplementation,
  apiKey: string | undefined,
): UntypedServiceImplementation {
  if (!apiKey) return implementation;
  const wrapped: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(implementation)) {
    const method = definition[name];
    const refuse = (call: CallLike): OrchError | undefined => {
      const raw = call.metadata.get("authorization")[0];
      const presented = bearerOf(typeof raw === "string" ? raw : undefined);
      if (presented === undefined)
        return OrchError.of(ErrorCode.ERROR_CODE_UNAUTHORIZED, "an API key is required: send authorization: Bearer <key>");
      if (!keyMatches(presented, apiKey)) return OrchError.of(ErrorCode.ERROR_CODE_FORBIDDEN, "the API key is not valid");
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
