import test from "ava";
import { Metadata, status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { toHttpError } from "../../../edge/core-client.js";

const transportError = (code: GrpcStatus, details: string): ServiceError =>
  Object.assign(new Error(`${code} ${GrpcStatus[code]}: ${details}`), { code, details, metadata: new Metadata() });

test("core unreachable: a retriable 503 in public words, the address only in the cause the log gets", (t) => {
  const err = toHttpError(
    transportError(GrpcStatus.UNAVAILABLE, "No connection established. Last error: connect ECONNREFUSED 127.0.0.1:48251"),
  );
  t.is(err.status, 503);
  t.deepEqual(err.envelope(), {
    code: "POOL_UNAVAILABLE",
    message: "core scheduler unreachable; retry shortly",
    retriable: true,
    retry_after_ms: 1000,
  });
  t.regex(err.internalDetail ?? "", /UNAVAILABLE: No connection established\. Last error: connect ECONNREFUSED 127\.0\.0\.1:48251/);
});

test("any other transport failure is a 500 that says where the detail is", (t) => {
  const err = toHttpError(transportError(GrpcStatus.INTERNAL, "Request message serialization failure: invalid uint64: 1e+300"));
  t.is(err.status, 500);
  t.notRegex(JSON.stringify(err.envelope()), /serialization|uint64/);
  t.regex(err.message, /log has the detail under this correlation id/);
  t.regex(err.internalDetail ?? "", /INTERNAL: Request message serialization failure/);
});
