import { createHash, randomBytes } from "node:crypto";
import { parse } from "yaml";
import { ROLES, type KeyBudgets, type KeyRateLimit, type Role } from "./roles.js";

/** One named key of a keys file. The key itself is never stored: only its sha256. */
export interface KeyEntry {
  name: string;
  role: Role;
  /** sha256 of the key, 64 lower-case hex digits. */
  sha256: string;
  rateLimit?: KeyRateLimit;
  sessionBudgets?: KeyBudgets;
}

const HASH = /^sha256:([0-9a-fA-F]{64})$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** "sha256:<hex>", the form a keys file holds. */
export function hashOfKey(key: string): string {
  return `sha256:${sha256Hex(key)}`;
}

export function sha256Hex(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** A new random key: 256 bits, URL-safe, with a prefix that says what it is when found in a file. */
export function newKey(): string {
  return `llorch_${randomBytes(32).toString("base64url")}`;
}

/**
 * The keys a keys file holds (YAML):
 *
 *   keys:
 *     alice:  { role: client, hash: "sha256:<64 hex>", rate-limit: { per-second: 5, burst: 10 } }
 *     ops:    { role: admin,  hash: "sha256:<64 hex>" }
 *     gpu-1:  { role: worker, hash: "sha256:<64 hex>", session-budgets: { tokens: 100000, time-ms: 600000, cost: 2.5 } }
 *
 * Throws an Error saying what is wrong and where; it never echoes a value,
 * because a mistaken file may hold a key in clear.
 */
export function parseKeysFile(text: string): KeyEntry[] {
  const doc = parseYaml(text);
  if (!isMapping(doc) || !isMapping(doc["keys"])) throw new Error("it must be a YAML mapping with a `keys:` mapping of name to key");
  const entries = Object.entries(doc["keys"]).map(([name, raw]) => keyEntry(name, raw));
  const seen = new Map<string, string>();
  for (const e of entries) {
    const other = seen.get(e.sha256);
    if (other !== undefined) throw new Error(`keys ${other} and ${e.name} have the same hash: one key, one name`);
    seen.set(e.sha256, e.name);
  }
  return entries;
}

/** The YAML, or an error naming the line, without the excerpt of the file that `yaml` would quote. */
function parseYaml(text: string): unknown {
  try {
    return parse(text);
  } catch (err) {
    throw new Error(`not valid YAML: ${(err as Error).message.split(":\n")[0]}`, { cause: err });
  }
}

function keyEntry(name: string, raw: unknown): KeyEntry {
  if (!NAME.test(name)) throw new Error(`key name ${JSON.stringify(name.slice(0, 64))} must be letters, digits, ".", "_" or "-"`);
  const at = `keys.${name}`;
  if (!isMapping(raw)) throw new Error(`${at} must be a mapping with role and hash`);
  const known = new Set(["role", "hash", "rate-limit", "session-budgets"]);
  const unknown = Object.keys(raw).find((k) => !known.has(k));
  if (unknown !== undefined) throw new Error(`${at}: unknown setting "${unknown}" (known: ${[...known].join(", ")})`);
  const role = raw["role"];
  if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role))
    throw new Error(`${at}.role must be one of ${ROLES.join(", ")}`);
  const hash = typeof raw["hash"] === "string" ? HASH.exec(raw["hash"]) : null;
  if (!hash) throw new Error(`${at}.hash must be "sha256:<64 hex digits>" (the file holds hashes, never keys: see llorch key)`);
  const entry: KeyEntry = { name, role: role as Role, sha256: hash[1]!.toLowerCase() };
  if (raw["rate-limit"] !== undefined) entry.rateLimit = rateLimitOf(`${at}.rate-limit`, raw["rate-limit"]);
  if (raw["session-budgets"] !== undefined) entry.sessionBudgets = budgetsOf(`${at}.session-budgets`, raw["session-budgets"]);
  return entry;
}

function rateLimitOf(at: string, raw: unknown): KeyRateLimit {
  const m = settings(at, raw, ["per-second", "burst"]);
  const perSecond = numberAt(at, m, "per-second", 0);
  if (perSecond === undefined) throw new Error(`${at}.per-second is required`);
  // As with --rate-limit-burst: by default a key may spend one second's worth at once.
  return { perSecond, burst: numberAt(at, m, "burst", 1, true) ?? Math.max(1, Math.ceil(perSecond)) };
}

function budgetsOf(at: string, raw: unknown): KeyBudgets {
  const m = settings(at, raw, ["tokens", "time-ms", "cost"]);
  const b: KeyBudgets = {};
  const tokens = numberAt(at, m, "tokens", 0, true);
  const timeMs = numberAt(at, m, "time-ms", 0, true);
  const cost = numberAt(at, m, "cost", 0);
  if (tokens !== undefined) b.tokens = tokens;
  if (timeMs !== undefined) b.timeMs = timeMs;
  if (cost !== undefined) b.cost = cost;
  return b;
}

function settings(at: string, raw: unknown, known: string[]): Record<string, unknown> {
  if (!isMapping(raw)) throw new Error(`${at} must be a mapping`);
  const unknown = Object.keys(raw).find((k) => !known.includes(k));
  if (unknown !== undefined) throw new Error(`${at}: unknown setting "${unknown}" (known: ${known.join(", ")})`);
  return raw;
}

function numberAt(at: string, m: Record<string, unknown>, key: string, min: number, integer = false): number | undefined {
  const v = m[key];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || (integer && !Number.isSafeInteger(v)))
    throw new Error(`${at}.${key} must be ${integer ? "an integer" : "a number"} of at least ${min}`);
  return v;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
