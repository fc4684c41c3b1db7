import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import {
  Artifact,
  type ArtifactServiceServer,
  type CreateArtifactRequest,
  type CreateArtifactResponse,
  type GetArtifactRequest,
  type GetArtifactResponse,
} from "../../contracts/gen/llama_orch/v1/artifact.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import { encodeDocument, toDocument } from "../artifacts/artifact-document.js";
import { ArtifactError, type ArtifactStore } from "../artifacts/artifact-store.js";
import { respond } from "./respond.js";

function typed(err: unknown): unknown {
  if (!(err instanceof ArtifactError)) return err;
  if (err.kind === "too_large") return OrchError.of(ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE, err.message, { field: err.field ?? "" });
  if (err.kind === "not_found") return OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, err.message);
  return OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, err.message, { field: err.field ?? "" });
}

/**
 * ArtifactService: clients' artifacts are held to `maxClientBytes` of
 * canonical JSON; the store itself allows more, for stream transcripts.
 */
export function artifactService(store: ArtifactStore, maxClientBytes: number, logger: Logger): ArtifactServiceServer {
  const answer = <T>(callback: sendUnaryData<T>, work: () => Promise<T>) => respond(callback, logger, work, typed);
  return {
    createArtifact(call: ServerUnaryCall<CreateArtifactRequest, CreateArtifactResponse>, callback: sendUnaryData<CreateArtifactResponse>) {
      answer(callback, async () => {
        const doc = toDocument(call.request.artifact ?? Artifact.fromPartial({}));
        const size = Buffer.byteLength(encodeDocument(doc));
        if (size > maxClientBytes)
          throw new ArtifactError("too_large", `artifact is ${size} bytes of canonical JSON; the limit is ${maxClientBytes}`);
        const { artifact, created } = await store.put(doc);
        return {
          ref: { id: artifact.id, kind: artifact.kind, digest: artifact.digest, createdMs: artifact.createdMs, tags: artifact.tags },
          created,
        };
      });
    },

    getArtifact(call: ServerUnaryCall<GetArtifactRequest, GetArtifactResponse>, callback: sendUnaryData<GetArtifactResponse>) {
      answer(callback, async () => {
        const artifact = await store.get(call.request.id);
        if (!artifact) throw OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `no artifact ${call.request.id}`);
        return { artifact };
      });
    },
  };
}
