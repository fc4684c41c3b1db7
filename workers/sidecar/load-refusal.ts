// How a failed LoadModel answers: FAILED_PRECONDITION with the adapter's
// sentence, and for a model whose bytes are not the expected ones also the
// typed reason core records (UNTRUSTED_ARTIFACT), as a google.rpc.ErrorInfo
// in the standard trailer, so core never has to read the sentence.
import { Metadata, status as GrpcStatus, type StatusObject } from "@grpc/grpc-js";
import { Engine, ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { Status } from "../../contracts/gen/google/rpc/status.js";
import { STATUS_DETAILS_KEY, statusOf } from "../../contracts/runtime/error-status.js";
import { WorkerFailure } from "../engine-adapter.js";
import { ProvisionError } from "../provision/provision-error.js";

/** The digest a LoadModel may name: the catalog's form. */
const EXPECTED_DIGEST = /^sha256:[0-9a-f]{64}$/i;

export function isExpectedDigest(digest: string): boolean {
  return EXPECTED_DIGEST.test(digest);
}

/** Whether a load failed because the model's bytes are not the expected ones (the cause chain holds the provisioner's verdict). */
export function isDigestMismatch(err: unknown): boolean {
  return err instanceof WorkerFailure && err.cause instanceof ProvisionError && err.cause.kind === "digest_mismatch";
}

/** The status a failed load answers with; grpc-js sends `metadata` as the call's trailers. */
export function loadRefusal(message: string, err: unknown): Error & Partial<StatusObject> {
  const refusal = Object.assign(new Error(message), { code: GrpcStatus.FAILED_PRECONDITION, details: message });
  if (!isDigestMismatch(err)) return refusal;
  const detail = {
    code: ErrorCode.ERROR_CODE_UNTRUSTED_ARTIFACT,
    message,
    engine: Engine.ENGINE_UNSPECIFIED,
    retriable: false,
    policyLabel: "",
    field: "",
  };
  // The call's code stays LoadModel's documented FAILED_PRECONDITION; the Status in the trailer must agree with it.
  const status = { ...statusOf(detail), code: GrpcStatus.FAILED_PRECONDITION };
  const metadata = new Metadata();
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(Status.encode(status).finish()));
  return Object.assign(refusal, { metadata });
}
