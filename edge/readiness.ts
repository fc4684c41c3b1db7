import { ErrorCode } from "../contracts/gen/llama_orch/v1/common.js";
import type { ListPoolsResponse, PoolSummary } from "../contracts/gen/llama_orch/v1/pool.js";
import { HttpError } from "./http-errors.js";

/** How long core's answer is reused: a load balancer probing every 100 ms costs core one call a second. */
export const READINESS_MAX_AGE_MS = 1_000;

export type ReadinessAnswer = { ready: true; poolsReady: number; replicasReady: number } | { ready: false; error: HttpError };

/**
 * Whether the deployment can take tasks: core answers ListPools and at least
 * one pool is ready and not draining. The last answer is kept for
 * `maxAgeMs`, and probes that arrive while core is being asked wait for that
 * one call instead of making their own.
 */
export class Readiness {
  private last: { at: number; answer: ReadinessAnswer } | undefined;
  private pending: Promise<ReadinessAnswer> | undefined;

  constructor(
    private readonly listPools: () => Promise<ListPoolsResponse>,
    private readonly maxAgeMs = READINESS_MAX_AGE_MS,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  check(): Promise<ReadinessAnswer> {
    if (this.last && this.clock() - this.last.at < this.maxAgeMs) return Promise.resolve(this.last.answer);
    this.pending ??= this.ask().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async ask(): Promise<ReadinessAnswer> {
    let answer: ReadinessAnswer;
    try {
      answer = readinessOf((await this.listPools()).pools);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      answer = notReady(ErrorCode.ERROR_CODE_POOL_UNAVAILABLE, message.startsWith("core") ? message : `core did not answer: ${message}`);
    }
    this.last = { at: this.clock(), answer };
    return answer;
  }
}

/** Ready pools are those that take tasks now; when there are none, the reason names what each pool lacks. */
export function readinessOf(pools: readonly PoolSummary[]): ReadinessAnswer {
  const taking = pools.filter((p) => p.ready && !p.draining);
  if (taking.length > 0) return { ready: true, poolsReady: taking.length, replicasReady: taking.reduce((n, p) => n + p.replicasReady, 0) };
  if (pools.every((p) => p.replicasTotal === 0))
    return notReady(ErrorCode.ERROR_CODE_POOL_UNAVAILABLE, "no replica has registered with core");
  const why = pools.map((p) =>
    p.draining ? `${p.id} is draining` : `${p.id} has no ready replica (${p.replicasReady} of ${p.replicasTotal})`,
  );
  return notReady(ErrorCode.ERROR_CODE_POOL_UNREADY, `no pool can take tasks: ${why.join("; ")}`);
}

function notReady(code: ErrorCode, message: string): ReadinessAnswer {
  return { ready: false, error: HttpError.of(code, message, { retriable: true, retryAfterMs: READINESS_MAX_AGE_MS }) };
}
