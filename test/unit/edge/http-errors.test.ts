import test from "ava";
import { ErrorCode } from "../../../contracts/gen/llama_orch/v1/common.js";
import { errorCodes } from "../../../contracts/enums.js";
import { validateAgainst } from "../../../contracts/openapi.js";
import { HTTP_STATUS, HttpError } from "../../../edge/http-errors.js";

const codes = Object.values(ErrorCode).filter((v): v is ErrorCode => typeof v === "number" && v > ErrorCode.ERROR_CODE_UNSPECIFIED);

test("every error code has an HTTP status and a public name the OpenAPI ErrorKind knows", (t) => {
  for (const code of codes) {
    t.true(HTTP_STATUS[code] >= 400, errorCodes.name(code));
    t.is(validateAgainst("/components/schemas/ErrorKind", errorCodes.name(code)), null, errorCodes.name(code));
  }
});

test("an envelope carries only what is set, and validates", (t) => {
  const e = HttpError.of(ErrorCode.ERROR_CODE_ADMISSION_REJECT, "full", { retriable: true, retryAfterMs: 1500, policyLabel: "reject" });
  t.is(e.status, 429);
  t.deepEqual(e.envelope(), { code: "ADMISSION_REJECT", message: "full", retriable: true, retry_after_ms: 1500, policy_label: "reject" });
  t.is(validateAgainst("/components/schemas/BackpressureErrorEnvelope", e.envelope()), null);
});
