import type { sendUnaryData } from "@grpc/grpc-js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { asServiceError } from "./task-service.js";

/**
 * Answers a unary call with what `work` returns, or with its error as a typed
 * gRPC error (`toTyped` turns a store's own errors into OrchErrors first).
 */
export function respond<T>(
  callback: sendUnaryData<T>,
  logger: Logger,
  work: () => T | Promise<T>,
  toTyped: (err: unknown) => unknown = (e) => e,
): void {
  Promise.resolve()
    .then(work)
    .then(
      (v) => callback(null, v),
      (err: unknown) => callback(asServiceError(toTyped(err), logger) as never, null),
    );
}
