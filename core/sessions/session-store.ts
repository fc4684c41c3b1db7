import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { OrchError } from "../../contracts/runtime/metadata.js";
import {
  assertValidLimits,
  exhaustedBudgets,
  mergeLimits,
  remainingOf,
  type BudgetLimits,
  type BudgetsRemaining,
  type BudgetUsage,
} from "./budgets.js";

export { budgetHeaders, type BudgetLimits, type BudgetsRemaining } from "./budgets.js";

export interface SessionOptions {
  /** Idle TTL, refreshed by every admitted task (and by its end). */
  ttlMs: number;
  maxTurns: number;
  defaultBudgets: BudgetLimits;
  /** By session id; each field set here overrides the same field of defaultBudgets. */
  perSessionBudgets: Record<string, BudgetLimits>;
  /** Cost units per 1000 tokens, input and output alike. */
  costPerThousandTokens: number;
}

export const DEFAULT_SESSION_OPTIONS: SessionOptions = Object.freeze({
  ttlMs: 10 * 60_000,
  maxTurns: 8,
  defaultBudgets: Object.freeze({}),
  perSessionBudgets: Object.freeze({}),
  costPerThousandTokens: 0,
});

export interface SessionSnapshot {
  id: string;
  ttlMsRemaining: number;
  turns: number;
  kvBytes: number;
  kvWarmth: boolean;
  lastReplicaId?: string;
  /** Only the limited budgets; negative when a task overran. */
  budgets: BudgetsRemaining;
}

export interface TaskUsage {
  tokensIn: number;
  tokensOut: number;
  decodeTimeMs: number;
  /** Set when the task ran on a replica: that is where the session's KV cache now lives. */
  replicaId?: string;
  kvBytes?: number;
}

interface Session {
  id: string;
  lastActiveAt: number;
  turns: number;
  kvBytes: number;
  lastReplicaId?: string;
  limits: BudgetLimits;
  used: BudgetUsage;
}

/**
 * The single owner of session state: turn counts, idle expiry, budgets and KV placement.
 * It has no timers (the owner calls sweep() periodically) so tests drive it with a fake clock.
 * Expiry is also checked lazily on every access, so an expired session is never observed
 * between sweeps.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly opts: SessionOptions;

  /** Cost units charged per 1000 tokens, for reporting a running task's live budget. */
  get costPerThousandTokens(): number {
    return this.opts.costPerThousandTokens;
  }

  constructor(
    options: Partial<SessionOptions> = {},
    // Monotonic by default: TTLs must not jump with wall-clock corrections.
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.opts = { ...DEFAULT_SESSION_OPTIONS, ...options };
    const { ttlMs, maxTurns, costPerThousandTokens, defaultBudgets, perSessionBudgets } = this.opts;
    if (!(Number.isFinite(ttlMs) && ttlMs > 0)) throw new RangeError(`session ttlMs must be > 0 (got ${ttlMs})`);
    if (!(Number.isInteger(maxTurns) && maxTurns >= 1)) throw new RangeError(`session maxTurns must be an integer >= 1 (got ${maxTurns})`);
    if (!(Number.isFinite(costPerThousandTokens) && costPerThousandTokens >= 0)) {
      throw new RangeError(`costPerThousandTokens must be >= 0 (got ${costPerThousandTokens})`);
    }
    assertValidLimits(defaultBudgets, "defaultBudgets");
    for (const [id, limits] of Object.entries(perSessionBudgets)) assertValidLimits(limits, `perSessionBudgets[${id}]`);
  }

  /**
   * Admits one more task of the session. `keyBudgets`, the budgets of the key
   * that sent it, apply to a session this task starts: they override the
   * defaults, and a per-session override wins over both.
   */
  admitTurn(sessionId: string, keyBudgets?: BudgetLimits): SessionSnapshot {
    const now = this.clock();
    // A refused first task must not leave a session behind, so a new one is stored only once admitted.
    const s = this.live(sessionId, now) ?? this.fresh(sessionId, now, keyBudgets);
    const { maxTurns } = this.opts;
    if (s.turns >= maxTurns) {
      throw OrchError.of(
        ErrorCode.ERROR_CODE_ADMISSION_REJECT,
        `session ${sessionId} has used all ${maxTurns} turns; start a new session`,
        { retriable: false, policyLabel: "session-turns" },
      );
    }
    const exhausted = exhaustedBudgets(s.limits, s.used);
    if (exhausted) {
      throw OrchError.of(
        ErrorCode.ERROR_CODE_ADMISSION_REJECT,
        `session ${sessionId} has exhausted its ${exhausted}; start a new session`,
        { retriable: false, policyLabel: "session-budget" },
      );
    }
    s.turns += 1;
    s.lastActiveAt = now;
    this.sessions.set(sessionId, s);
    return this.snapshot(s, now);
  }

  releaseTurn(sessionId: string): void {
    const s = this.live(sessionId, this.clock());
    if (!s || s.turns === 0) return;
    s.turns -= 1;
    // Its only task never got in: the session was never really used, so forget it.
    if (s.turns === 0 && isUnused(s)) this.sessions.delete(sessionId);
  }

  /**
   * Usage for a session that expired or was deleted while its task ran is dropped:
   * recreating it here would resurrect a session the client already ended.
   */
  recordUsage(sessionId: string, usage: TaskUsage): void {
    const { tokensIn, tokensOut, decodeTimeMs } = usage;
    for (const [name, v] of Object.entries({ tokensIn, tokensOut, decodeTimeMs, kvBytes: usage.kvBytes ?? 0 })) {
      if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`usage.${name} must be a finite number >= 0 (got ${v})`);
    }
    const now = this.clock();
    const s = this.live(sessionId, now);
    if (!s) return;
    const tokens = tokensIn + tokensOut;
    s.used.tokens += tokens;
    // Whole milliseconds, rounded up, so very short tasks still cost something.
    s.used.timeMs += Math.ceil(decodeTimeMs);
    s.used.cost += (tokens / 1000) * this.opts.costPerThousandTokens;
    if (usage.replicaId !== undefined) {
      s.lastReplicaId = usage.replicaId;
      s.kvBytes = usage.kvBytes ?? 0;
    }
    // The TTL is about idleness; a task that just ended means the session was busy until now.
    s.lastActiveAt = now;
  }

  get(sessionId: string): SessionSnapshot | undefined {
    const now = this.clock();
    const s = this.live(sessionId, now);
    return s && this.snapshot(s, now);
  }

  delete(sessionId: string): { existed: boolean; lastReplicaId?: string } {
    const s = this.live(sessionId, this.clock());
    if (!s) return { existed: false };
    this.sessions.delete(sessionId);
    return s.lastReplicaId === undefined ? { existed: true } : { existed: true, lastReplicaId: s.lastReplicaId };
  }

  /** Drops every expired session; returns how many. */
  sweep(): number {
    const now = this.clock();
    let dropped = 0;
    for (const [id, s] of this.sessions) {
      if (this.isExpired(s, now)) {
        this.sessions.delete(id);
        dropped += 1;
      }
    }
    return dropped;
  }

  /** Sessions held in memory, including expired ones not yet swept. */
  size(): number {
    return this.sessions.size;
  }

  private live(sessionId: string, now: number): Session | undefined {
    const s = this.sessions.get(sessionId);
    if (s && this.isExpired(s, now)) {
      this.sessions.delete(sessionId);
      return undefined;
    }
    return s;
  }

  private fresh(id: string, now: number, keyBudgets: BudgetLimits | undefined): Session {
    const { defaultBudgets, perSessionBudgets } = this.opts;
    return {
      id,
      lastActiveAt: now,
      turns: 0,
      kvBytes: 0,
      limits: mergeLimits(
        mergeLimits(defaultBudgets, keyBudgets),
        Object.hasOwn(perSessionBudgets, id) ? perSessionBudgets[id] : undefined,
      ),
      used: { tokens: 0, timeMs: 0, cost: 0 },
    };
  }

  private isExpired(s: Session, now: number): boolean {
    return now - s.lastActiveAt >= this.opts.ttlMs;
  }

  private snapshot(s: Session, now: number): SessionSnapshot {
    const snap: SessionSnapshot = {
      id: s.id,
      ttlMsRemaining: Math.max(0, Math.ceil(s.lastActiveAt + this.opts.ttlMs - now)),
      turns: s.turns,
      kvBytes: s.kvBytes,
      kvWarmth: s.lastReplicaId !== undefined,
      budgets: remainingOf(s.limits, s.used),
    };
    if (s.lastReplicaId !== undefined) snap.lastReplicaId = s.lastReplicaId;
    return snap;
  }
}

function isUnused(s: Session): boolean {
  return s.lastReplicaId === undefined && s.used.tokens === 0 && s.used.timeMs === 0;
}
