import { readFileSync } from "node:fs";
import { parse } from "yaml";

export type FlagValues = Record<string, string | boolean | undefined>;

/**
 * Reads a YAML config file. Each command's section holds the same names as its
 * flags (`core: {port: 50051}`, `edge: {core: "127.0.0.1:50051"}`), and
 * `workers:` is a list of worker sections for `llorch up`.
 */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  const doc: unknown = parse(text);
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new Error(`config file ${path} must be a YAML mapping`);
  return doc as Record<string, unknown>;
}

const STRUCTURED_KEYS = new Set(["session-budgets"]);

/** A config section as flag values (numbers and booleans become the strings flags would be). */
export function sectionFlags(section: unknown, where: string): FlagValues {
  if (section === undefined || section === null) return {};
  if (typeof section !== "object" || Array.isArray(section)) throw new Error(`config: ${where} must be a mapping`);
  const out: FlagValues = {};
  for (const [k, v] of Object.entries(section)) {
    // Structured settings (e.g. core.session-budgets) are read by their command, not as flags.
    if (STRUCTURED_KEYS.has(k)) continue;
    if (typeof v === "boolean") out[k] = v;
    else if (typeof v === "string" || typeof v === "number") out[k] = String(v);
    else throw new Error(`config: ${where}.${k} must be a string, number or boolean`);
  }
  return out;
}

/** Flags given on the command line win over the config file. */
export function mergeFlags(fromFile: FlagValues, fromArgs: FlagValues): FlagValues {
  const out: FlagValues = { ...fromFile };
  for (const [k, v] of Object.entries(fromArgs)) if (v !== undefined) out[k] = v;
  return out;
}
