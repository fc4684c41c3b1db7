import type { FlagValues } from "./config-file.js";

/** Parses a flag that must be a whole number in [min, max]; names the flag when it is not. */
export function intFlag(flags: FlagValues, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== "string" || !/^-?\d+$/.test(raw.trim())) throw new Error(`--${name} must be a whole number, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new Error(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function stringFlag(flags: FlagValues, name: string, fallback: string): string {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== "string" || raw === "") throw new Error(`--${name} needs a value`);
  return raw;
}

export function optionalIntFlag(flags: FlagValues, name: string, min = 0, max = 65535): number | undefined {
  return flags[name] === undefined ? undefined : intFlag(flags, name, 0, min, max);
}

export function numberFlag(flags: FlagValues, name: string, fallback: number): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  const n = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return n;
}

export function optionalNumberFlag(flags: FlagValues, name: string): number | undefined {
  return flags[name] === undefined ? undefined : numberFlag(flags, name, 0);
}

export function choiceFlag<T extends string>(flags: FlagValues, name: string, fallback: T, choices: readonly T[]): T {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== "string" || !(choices as readonly string[]).includes(raw)) throw new Error(`--${name} must be one of ${choices.join(", ")}, got ${JSON.stringify(raw)}`);
  return raw as T;
}
