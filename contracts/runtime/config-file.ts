import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { FlagValues } from "./flag-table.js";

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
    throw new Error(`cannot read config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  const doc: unknown = parse(text);
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new Error(`config file ${path} must be a YAML mapping`);
  return doc as Record<string, unknown>;
}

/**
 * A config section as flag values (numbers become the strings flags would be).
 * `structuredKeys` are settings that are no flag (e.g. core.session-budgets):
 * the command reads those from the section itself.
 */
export function sectionFlags(section: unknown, where: string, structuredKeys: readonly string[] = []): FlagValues {
  if (section === undefined || section === null) return {};
  if (typeof section !== "object" || Array.isArray(section)) throw new Error(`config: ${where} must be a mapping`);
  const out: FlagValues = {};
  for (const [k, v] of Object.entries(section)) {
    if (structuredKeys.includes(k)) continue;
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
