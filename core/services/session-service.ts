import { Metadata, type sendUnaryData, type ServerUnaryCall } from "@grpc/grpc-js";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type {
  DeleteSessionRequest,
  DeleteSessionResponse,
  GetSessionRequest,
  GetSessionResponse,
  SessionServiceServer,
} from "../../contracts/gen/llama_orch/v1/session.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import type { ReplicaRegistry } from "../registry/replica-registry.js";
import type { SessionStore } from "../sessions/session-store.js";
import { asServiceError } from "./task-service.js";

/** How long DELETE waits for a replica to evict a session's KV cache. */
const EVICT_DEADLINE_MS = 2_000;

/** SessionService: session info, and delete with KV eviction on the replica holding it. */
export function sessionService(sessions: SessionStore, registry: ReplicaRegistry, logger: Logger): SessionServiceServer {
  return {
    getSession(call: ServerUnaryCall<GetSessionRequest, GetSessionResponse>, callback: sendUnaryData<GetSessionResponse>) {
      const s = sessions.get(call.request.sessionId);
      if (!s) {
        callback(
          asServiceError(OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `unknown or expired session ${call.request.sessionId}`), logger),
          null,
        );
        return;
      }
      callback(null, {
        ttlMsRemaining: Math.max(0, Math.round(s.ttlMsRemaining)),
        turns: s.turns,
        kvBytes: s.kvBytes,
        kvWarmth: s.kvWarmth,
        budgets: {
          tokensRemaining: floorOrUndefined(s.budgets.tokens),
          timeRemainingMs: floorOrUndefined(s.budgets.timeMs),
          costRemaining: s.budgets.cost,
        },
      });
    },

    deleteSession(call: ServerUnaryCall<DeleteSessionRequest, DeleteSessionResponse>, callback: sendUnaryData<DeleteSessionResponse>) {
      const id = call.request.sessionId;
      const { existed, lastReplicaId } = sessions.delete(id);
      if (!existed) {
        callback(asServiceError(OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `unknown or expired session ${id}`), logger), null);
        return;
      }
      const replica = lastReplicaId ? registry.get(lastReplicaId) : undefined;
      if (!replica) {
        callback(null, { kvEvicted: false });
        return;
      }
      replica.client.evictSession({ sessionId: id }, new Metadata(), { deadline: Date.now() + EVICT_DEADLINE_MS }, (err, res) => {
        if (err)
          logger.warn(
            { session_id: id, replica_id: replica.id, err: err.message },
            `could not evict session ${id} on replica ${replica.id}`,
          );
        else
          logger.info(
            { session_id: id, replica_id: replica.id, event: "session_deleted", kv_evicted: res.evicted },
            `session ${id} deleted${res.evicted ? `, KV evicted on ${replica.id}` : ""}`,
          );
        callback(null, { kvEvicted: !err && res.evicted });
      });
    },
  };
}

function floorOrUndefined(v: number | undefined): number | undefined {
  return v === undefined ? undefined : Math.floor(v);
}
