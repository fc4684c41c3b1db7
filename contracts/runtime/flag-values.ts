import { parseNonNegativeInteger, parseNonNegativeNumber } from "./strict-numbers.js";

// Parsers for one flag's value, shared by every component's flag table. A
// value comes from the command line (a string, or true for a bare switch) or
// from a config file section (its numbers and booleans arrive the same way).
// `flag` is how an error names the flag, e.g. "--port": a person reading the
// message must know which of their flags to fix.

export function flagText(flag: string, value: string | boolean): string {
  if (typeof value !== "string" || value === "") throw new Error(`${flag} needs a value`);
  return value;
}

/** A whole number in [min, max]: digits only, so "12abc", "1.5", "-1" and " 5" are refused. */
export function flagInteger(flag: string, value: string | boolean, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = parseNonNegativeInteger(flagText(flag, value));
  if (n === undefined || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`;
    throw new Error(`${flag} must be ${range}, got "${String(value)}"`);
  }
  return n;
}

/** A non-negative decimal number such as "0", "12" or "2.5". */
export function flagNumber(flag: string, value: string | boolean): number {
  const n = parseNonNegativeNumber(flagText(flag, value));
  if (n === undefined) throw new Error(`${flag} must be a non-negative number, got "${String(value)}"`);
  return n;
}

/** A switch (present = true) or a spelled-out true/false, 1/0, yes/no. */
export function flagBoolean(flag: string, value: string | boolean): boolean {
  if (value === true || value === "true" || value === "1" || value === "yes") return true;
  if (value === false || value === "false" || value === "0" || value === "no") return false;
  throw new Error(`${flag} must be true or false, got "${value}"`);
}

export function flagChoice<T extends string>(flag: string, value: string | boolean, choices: readonly T[]): T {
  if (typeof value !== "string" || !(choices as readonly string[]).includes(value))
    throw new Error(`${flag} must be one of ${choices.join(", ")}, got ${JSON.stringify(value)}`);
  return value as T;
}

/** A comma-separated list; blanks around and empty entries are dropped, but at least one entry is required. */
export function flagList(flag: string, value: string | boolean): string[] {
  const items = flagText(flag, value)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new Error(`${flag} needs at least one value, got "${String(value)}"`);
  return items;
}
