import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { projectRoot } from "../../../contracts/runtime/project-root.js";

export const SYSTEMD_DIR = join(projectRoot(), "deploy", "systemd");

/** A systemd unit file as systemd reads it: sections of key=value lines, a trailing backslash continuing a line. */
export interface UnitFile {
  name: string;
  text: string;
  /** Section name to its entries in order (a key may repeat). */
  sections: Map<string, [string, string][]>;
}

export function unitFiles(): UnitFile[] {
  return readdirSync(SYSTEMD_DIR)
    .filter((f) => f.endsWith(".service"))
    .sort()
    .map((f) => parseUnit(f, readFileSync(join(SYSTEMD_DIR, f), "utf8")));
}

export function parseUnit(name: string, text: string): UnitFile {
  const sections = new Map<string, [string, string][]>();
  let section: [string, string][] | undefined;
  for (const line of text.replace(/\\\n/g, " ").split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#") || trimmed.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(trimmed);
    if (header) sections.set(header[1]!, (section = []));
    else if (section && trimmed.includes("="))
      section.push([trimmed.slice(0, trimmed.indexOf("=")).trim(), trimmed.slice(trimmed.indexOf("=") + 1).trim()]);
    else throw new Error(`${name}: a line outside a section or without "=": ${trimmed}`);
  }
  return { name, text, sections };
}

/** Every value of a key in a section (a key may be given more than once). */
export function values(unit: UnitFile, section: string, key: string): string[] {
  return (unit.sections.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

export function value(unit: UnitFile, section: string, key: string): string | undefined {
  return values(unit, section, key).at(-1);
}

/** An Exec*= command line as words (the units quote nothing), its path without systemd's prefixes (-, @, +, !, :). */
export function commandWords(line: string): string[] {
  if (/["']/.test(line)) throw new Error(`quoting is not handled here: ${line}`);
  const words = line.split(/\s+/).filter((w) => w !== "");
  if (words[0]) words[0] = words[0].replace(/^[-@+!:]+/, "");
  return words;
}

/** The absolute programs every Exec*= line of the units runs. */
export function programsOf(units: UnitFile[]): string[] {
  const exec = units.flatMap((u) =>
    [...(u.sections.get("Service") ?? [])].filter(([k]) => k.startsWith("Exec")).map(([, v]) => commandWords(v)[0]!),
  );
  return [...new Set(exec)];
}

/** An EnvironmentFile template of deploy/systemd: its set variables, and the commented-out examples of each. */
export interface EnvTemplate {
  file: string;
  text: string;
  set: Map<string, string>;
  examples: Map<string, string[]>;
}

export function envTemplate(path: string): EnvTemplate {
  const file = basename(path);
  const text = readFileSync(join(SYSTEMD_DIR, file), "utf8");
  const set = new Map<string, string>();
  const examples = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const example = /^#\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (example) examples.set(example[1]!, [...(examples.get(example[1]!) ?? []), example[2]!.trim()]);
    const assignment = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (assignment) set.set(assignment[1]!, assignment[2]!.trim());
  }
  return { file, text, set, examples };
}
