import type { Budgets } from "../contracts/gen/llama_orch/v1/task.js";

/**
 * X-Budget-* headers for the session's limited budgets (unlimited ones are
 * absent). A budget a task overran reads 0 here; the JSON views show the
 * real, negative remainder.
 */
export function budgetHeaders(b: Budgets | undefined): Record<string, string> {
  const h: Record<string, string> = {};
  if (!b) return h;
  if (b.tokensRemaining !== undefined) h["X-Budget-Tokens-Remaining"] = String(Math.max(0, Math.floor(b.tokensRemaining)));
  if (b.timeRemainingMs !== undefined) h["X-Budget-Time-Remaining-Ms"] = String(Math.max(0, Math.floor(b.timeRemainingMs)));
  if (b.costRemaining !== undefined) h["X-Budget-Cost-Remaining"] = String(Math.max(0, Math.round(b.costRemaining * 1e6) / 1e6));
  return h;
}
