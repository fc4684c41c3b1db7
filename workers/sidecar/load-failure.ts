// The reason a model load failed, as a clause for health's last_error and the
// LoadModel error ("failed to load <ref>: <reason>"), with the provisioner's
// kind in words so a person (and core) can tell a digest mismatch from a
// missing token without a stack trace.
import { messageOf, ProvisionError, type ProvisionErrorKind } from "../provision/provision-error.js";

const KIND_WORDS: Record<ProvisionErrorKind, string> = {
  invalid_ref: "invalid model_ref",
  unsupported_scheme: "not supported",
  config: "provisioning is misconfigured",
  not_found: "not found",
  unauthorized: "not authorized",
  network: "download failed",
  http_error: "download failed",
  size_mismatch: "size mismatch",
  digest_mismatch: "digest mismatch",
  no_space: "no space in the model cache",
  aborted: "cancelled",
  io: "file error",
};

/** "digest mismatch: sha256 … is not the expected …; the downloaded bytes were deleted", without the ref repeated. */
export function loadFailureReason(ref: string, err: unknown): string {
  const message = withoutRef(ref, messageOf(err));
  return err instanceof ProvisionError ? `${KIND_WORDS[err.kind]}: ${message}` : message;
}

/** The provisioner's and the plan's sentences start with the ref, which the caller's sentence already names. */
function withoutRef(ref: string, message: string): string {
  for (const prefix of [`${ref}: `, `${ref} `]) if (message.startsWith(prefix)) return message.slice(prefix.length);
  return message;
}
