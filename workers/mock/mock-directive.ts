import { WorkerErrorKind } from "../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure, workerErrorKinds } from "../engine-adapter.js";
import { parseNonNegativeInteger, parseNonNegativeNumber } from "../../contracts/runtime/strict-numbers.js";

/** How the mock behaves for one task: its configuration, possibly overridden by a directive. */
export interface MockBehaviour {
  /** Token rate; 0 means as fast as possible. */
  tokensPerSecond: number;
  /** Fail with `failKind` once this many tokens were produced (0: before the first). */
  failAfter?: number;
  failKind: WorkerErrorKind;
  /** Produce nothing more after this many tokens until the generation is aborted. */
  hangAfter?: number;
  /** Delay between `started` and the first token. */
  slowStartMs: number;
}

/**
 * Per-task overrides travel inside the prompt, because that is the one field
 * a test can set end to end through the public API:
 *
 *   [[mock fail_after=3 fail_kind=engine_error hang_after=5 slow_start_ms=200 tokens_per_second=50]]
 *
 * Keys are optional and may come in any order; values are non-negative
 * integers (tokens_per_second may have decimals), fail_kind is a public
 * WorkerErrorKind name (engine_error, timeout, reset, ...). The directive is
 * removed before the prompt is counted and hashed, so adding one does not
 * change the tokens the task would have produced. A malformed directive
 * fails the task with INVALID_REQUEST rather than being silently ignored.
 */
const DIRECTIVE = /\s*\[\[mock(?:\s+([^\]]*))?\]\]\s*/g;

export interface ParsedPrompt {
  /** The prompt without directives: what tokens are derived from. */
  prompt: string;
  overrides: Partial<MockBehaviour>;
}

export function parseMockDirectives(prompt: string): ParsedPrompt {
  if (!prompt.includes("[[mock")) return { prompt, overrides: {} };
  const overrides: Partial<MockBehaviour> = {};
  for (const match of prompt.matchAll(DIRECTIVE)) {
    for (const pair of (match[1] ?? "").split(/\s+/).filter(Boolean)) applyPair(pair, overrides);
  }
  return { prompt: prompt.replace(DIRECTIVE, " ").trim(), overrides };
}

function applyPair(pair: string, into: Partial<MockBehaviour>): void {
  const eq = pair.indexOf("=");
  const key = eq < 0 ? pair : pair.slice(0, eq);
  const value = eq < 0 ? "" : pair.slice(eq + 1);
  switch (key) {
    case "fail_after":
      into.failAfter = integer(key, value);
      return;
    case "hang_after":
      into.hangAfter = integer(key, value);
      return;
    case "slow_start_ms":
      into.slowStartMs = integer(key, value);
      return;
    case "tokens_per_second": {
      const n = parseNonNegativeNumber(value);
      if (n === undefined) throw invalid(`tokens_per_second needs a non-negative number, got "${value}"`);
      into.tokensPerSecond = n;
      return;
    }
    case "fail_kind": {
      const kind = workerErrorKinds.parse(value);
      if (kind === undefined) throw invalid(`fail_kind must be one of ${workerErrorKinds.names().join(", ")}; got "${value}"`);
      into.failKind = kind;
      return;
    }
    default:
      throw invalid(`unknown key "${key}" (known: fail_after, fail_kind, hang_after, slow_start_ms, tokens_per_second)`);
  }
}

function integer(key: string, value: string): number {
  const n = parseNonNegativeInteger(value);
  if (n === undefined) throw invalid(`${key} needs a non-negative integer, got "${value}"`);
  return n;
}

function invalid(message: string): WorkerFailure {
  return new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST, `mock directive: ${message}`);
}
