/** A session's spending limits; an undefined field is unlimited. */
export interface BudgetLimits {
  tokens?: number;
  timeMs?: number;
  cost?: number;
}

/** What is left of each limited budget. Values go negative when a task overran. */
export interface BudgetsRemaining {
  tokens?: number;
  timeMs?: number;
  cost?: number;
}

/** What a session has spent so far. */
export interface BudgetUsage {
  tokens: number;
  timeMs: number;
  cost: number;
}

type BudgetName = keyof BudgetLimits;
const BUDGET_NAMES: readonly BudgetName[] = ["tokens", "timeMs", "cost"];

const LABEL: Record<BudgetName, { noun: string; unit: string }> = {
  tokens: { noun: "token", unit: "tokens" },
  timeMs: { noun: "time", unit: "ms" },
  cost: { noun: "cost", unit: "cost units" },
};

/** Cost is fractional; 6 decimals hides float drift without losing real precision. */
export function roundCost(v: number): number {
  const r = Math.round(v * 1e6) / 1e6;
  return r === 0 ? 0 : r; // never report -0
}

/** Per-session limits win over the defaults, but only for the fields they set. */
export function mergeLimits(defaults: BudgetLimits, override: BudgetLimits | undefined): BudgetLimits {
  const merged: BudgetLimits = {};
  for (const name of BUDGET_NAMES) {
    const v = override?.[name] ?? defaults[name];
    if (v !== undefined) merged[name] = v;
  }
  return merged;
}

export function remainingOf(limits: BudgetLimits, used: BudgetUsage): BudgetsRemaining {
  const left: BudgetsRemaining = {};
  for (const name of BUDGET_NAMES) {
    const limit = limits[name];
    if (limit === undefined) continue;
    left[name] = name === "cost" ? roundCost(limit - used.cost) : limit - used[name];
  }
  return left;
}

/**
 * Describes every budget at or below zero, e.g. "token budget (used 1050 of 1000 tokens, 50 over)",
 * or undefined when the session may still spend. The numbers let a client see how far it overran.
 */
export function exhaustedBudgets(limits: BudgetLimits, used: BudgetUsage): string | undefined {
  const left = remainingOf(limits, used);
  const parts: string[] = [];
  for (const name of BUDGET_NAMES) {
    const r = left[name];
    if (r === undefined || r > 0) continue;
    const { noun, unit } = LABEL[name];
    const spent = name === "cost" ? roundCost(used.cost) : used[name];
    parts.push(`${noun} budget (used ${spent} of ${limits[name]} ${unit}, ${name === "cost" ? roundCost(-r) : -r} over)`);
  }
  return parts.length > 0 ? parts.join(" and its ") : undefined;
}

/**
 * X-Budget-* response headers for the limited budgets only. Clients read these as "what I may
 * still spend", so an overrun shows as 0 rather than a negative number.
 */
export function budgetHeaders(b: BudgetsRemaining): Record<string, string> {
  const headers: Record<string, string> = {};
  const clamp = (v: number) => String(Math.max(0, v));
  if (b.tokens !== undefined) headers["X-Budget-Tokens-Remaining"] = clamp(Math.floor(b.tokens));
  if (b.timeMs !== undefined) headers["X-Budget-Time-Remaining-Ms"] = clamp(Math.floor(b.timeMs));
  if (b.cost !== undefined) headers["X-Budget-Cost-Remaining"] = clamp(roundCost(b.cost));
  return headers;
}

/** Config mistakes should stop startup, not surface later as odd refusals. */
export function assertValidLimits(limits: BudgetLimits, where: string): void {
  for (const name of BUDGET_NAMES) {
    const v = limits[name];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) {
      throw new RangeError(`${where}.${name} must be a finite number >= 0 (got ${v})`);
    }
  }
}
