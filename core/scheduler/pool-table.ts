import { ErrorCode, type Engine } from "../../contracts/gen/llama_orch/v1/common.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import type { Replica } from "../registry/replica.js";
import { PoolState } from "./pool-state.js";

/** Every pool core has seen, by id. A pool exists once a replica registered into it (or a recovered task named it) and is never removed. */
export class PoolTable {
  private readonly pools = new Map<string, PoolState>();

  constructor(private readonly queueCapacity: number) {}

  get(poolId: string): PoolState | undefined {
    return this.pools.get(poolId);
  }

  /** The pool, or NOT_FOUND. */
  require(poolId: string): PoolState {
    const pool = this.pools.get(poolId);
    if (!pool) throw OrchError.of(ErrorCode.ERROR_CODE_NOT_FOUND, `unknown pool ${poolId}`);
    return pool;
  }

  /** The replica's pool, created on its first replica. */
  ensure(replica: Replica): PoolState {
    return this.ensureId(replica.poolId, replica.registration.engine);
  }

  /** The pool, created empty: by its first replica, or by a task recovered from the journal before any replica is back. */
  ensureId(poolId: string, engine: Engine): PoolState {
    let pool = this.pools.get(poolId);
    if (!pool) {
      pool = new PoolState(poolId, engine, this.queueCapacity);
      this.pools.set(pool.id, pool);
    }
    return pool;
  }

  all(): IterableIterator<PoolState> {
    return this.pools.values();
  }
}
