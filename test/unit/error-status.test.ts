import test from "ava";
import fc from "fast-check";
import { Metadata, status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { BadRequest, ErrorInfo, RetryInfo } from "../../contracts/gen/google/rpc/error_details.js";
import { Status } from "../../contracts/gen/google/rpc/status.js";
import { Engine, ErrorCode, type ErrorDetail } from "../../contracts/gen/llama_orch/v1/common.js";
import { errorDetailOf, serviceErrorOf, STATUS_DETAILS_KEY } from "../../contracts/runtime/error-status.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import { toHttpError } from "../../edge/core-client.js";
import { HttpError } from "../../edge/http-errors.js";

const enumValues = <E>(e: object) => Object.values(e).filter((v): v is E => typeof v === "number" && v >= 0);

const detailArb: fc.Arbitrary<ErrorDetail> = fc.record({
  code: fc.constantFrom(...enumValues<ErrorCode>(ErrorCode)),
  message: fc.string({ unit: "grapheme" }),
  engine: fc.constantFrom(...enumValues<Engine>(Engine)),
  retriable: fc.boolean(),
  retryAfterMs: fc.option(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), { nil: undefined }),
  policyLabel: fc.string(),
  field: fc.string(),
});

/** What a grpc-js client sees of a failed call: code, details and the trailers. */
const asReceived = (err: Partial<ServiceError>) => err as ServiceError;

function trailerWith(value: Buffer): ServiceError {
  const metadata = new Metadata();
  metadata.set(STATUS_DETAILS_KEY, value);
  return asReceived({ code: GrpcStatus.INTERNAL, details: "x", metadata });
}

test("every ErrorDetail survives the trip through grpc-status-details-bin, and so does the edge's envelope", (t) => {
  fc.assert(
    fc.property(detailArb, (d) => {
      const sent = serviceErrorOf(d);
      t.deepEqual(errorDetailOf(sent), d);
      t.deepEqual(toHttpError(asReceived(sent)).envelope(), new HttpError(d).envelope());
    }),
  );
});

test("a fully set error rebuilds the whole public envelope", (t) => {
  const err = OrchError.of(ErrorCode.ERROR_CODE_REPLICA_EXHAUSTED, "all slots busy", {
    engine: Engine.ENGINE_VLLM,
    retriable: true,
    retryAfterMs: 0,
    policyLabel: "reject",
    field: "/engine",
  });
  t.deepEqual(toHttpError(asReceived(err.toServiceError())).envelope(), {
    code: "REPLICA_EXHAUSTED",
    message: "all slots busy",
    engine: "vllm",
    retriable: true,
    retry_after_ms: 0,
    policy_label: "reject",
    field: "/engine",
  });
});

test("the trailer is the standard Status: gRPC code, message, ErrorInfo, RetryInfo and BadRequest", (t) => {
  const sent = OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, "ctx too big", { field: "/ctx", retryAfterMs: 2500 }).toServiceError();
  t.is(sent.code, GrpcStatus.INVALID_ARGUMENT);
  t.deepEqual(Object.keys(sent.metadata!.getMap()), [STATUS_DETAILS_KEY], "no trailer of our own");
  const status = Status.decode(sent.metadata!.get(STATUS_DETAILS_KEY)[0] as Buffer);
  t.is(status.code, GrpcStatus.INVALID_ARGUMENT);
  t.is(status.message, "ctx too big");
  t.deepEqual(
    status.details.map((d) => d.typeUrl),
    ["type.googleapis.com/google.rpc.ErrorInfo", "type.googleapis.com/google.rpc.RetryInfo", "type.googleapis.com/google.rpc.BadRequest"],
  );
  t.deepEqual(ErrorInfo.decode(status.details[0]!.value), {
    reason: "ERROR_CODE_INVALID_PARAMS",
    domain: "llama-orch.v1",
    metadata: { retry_after_ms: "2500", field: "/ctx" },
  });
  t.deepEqual(RetryInfo.decode(status.details[1]!.value).retryDelay, { seconds: 2, nanos: 500_000_000 });
  t.deepEqual(BadRequest.decode(status.details[2]!.value).fieldViolations, [{ field: "/ctx", description: "ctx too big" }]);
});

test("an error without a retry hint or a field carries only its ErrorInfo, with no metadata", (t) => {
  const sent = OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, "unknown task t1").toServiceError();
  t.is(sent.code, GrpcStatus.NOT_FOUND);
  const status = Status.decode(sent.metadata!.get(STATUS_DETAILS_KEY)[0] as Buffer);
  t.is(status.details.length, 1);
  t.deepEqual(ErrorInfo.decode(status.details[0]!.value).metadata, {});
});

test("a reason this build does not know stays UNRECOGNIZED rather than being dropped", (t) => {
  const info = ErrorInfo.encode({ reason: "ERROR_CODE_FROM_THE_FUTURE", domain: "llama-orch.v1", metadata: {} }).finish();
  const raw = Status.encode({
    code: GrpcStatus.UNKNOWN,
    message: "new",
    details: [{ typeUrl: "type.googleapis.com/google.rpc.ErrorInfo", value: Buffer.from(info) }],
  }).finish();
  t.is(errorDetailOf(trailerWith(Buffer.from(raw)))?.code, ErrorCode.UNRECOGNIZED);
});

test("an absent, garbage or foreign trailer yields undefined, never a throw", (t) => {
  t.is(errorDetailOf({}), undefined);
  t.is(errorDetailOf(asReceived({ code: GrpcStatus.UNAVAILABLE, details: "no connection", metadata: new Metadata() })), undefined);
  t.is(errorDetailOf(trailerWith(Buffer.from("not a status at all"))), undefined);
  t.is(errorDetailOf(trailerWith(Buffer.from([0x1a, 0x05, 0x0a, 0x03]))), undefined, "truncated");
  const foreignInfo = ErrorInfo.encode({ reason: "RATE_LIMITED", domain: "example.com", metadata: {} }).finish();
  const foreign = Status.encode({
    code: GrpcStatus.RESOURCE_EXHAUSTED,
    message: "slow down",
    details: [{ typeUrl: "type.googleapis.com/google.rpc.ErrorInfo", value: Buffer.from(foreignInfo) }],
  }).finish();
  t.is(errorDetailOf(trailerWith(Buffer.from(foreign))), undefined, "another domain's ErrorInfo is not ours");
  const noInfo = Status.encode({ code: GrpcStatus.INTERNAL, message: "bare", details: [] }).finish();
  t.is(errorDetailOf(trailerWith(Buffer.from(noInfo))), undefined);
  fc.assert(fc.property(fc.uint8Array(), (bytes) => errorDetailOf(trailerWith(Buffer.from(bytes))) === undefined));
});
