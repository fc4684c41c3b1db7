import type { ComponentCommand } from "../../../contracts/runtime/component-command.js";
import type { FlagValues } from "../../../contracts/runtime/flag-table.js";
import { coreCommand } from "../../../core/core-command.js";
import { edgeCommand } from "../../../edge/edge-command.js";
import { workerCommand } from "../../../workers/sidecar/worker-command.js";

/** The components a deployment file runs, as `llorch <role>`. */
export type Role = "core" | "edge" | "worker";

export const ROLES: readonly Role[] = ["core", "edge", "worker"];

const COMMANDS: Record<Role, ComponentCommand<unknown>> = {
  core: coreCommand,
  edge: edgeCommand,
  worker: workerCommand,
};

/**
 * Flags the deployment files already use that branches not yet merged add (each takes one
 * value). Empty now: keys and TLS (i12-auth) and core's journal (i12-durable) have landed.
 * A test fails for every name listed here that its table already has.
 */
export const NOT_YET_MERGED_FLAGS: Record<Role, readonly string[]> = { core: [], edge: [], worker: [] };

/** The names in a component's flag table (what `llorch <role> --help` lists). */
export function flagNamesOf(role: Role): string[] {
  return COMMANDS[role].flags.map((spec) => spec.name);
}

/**
 * What is wrong with the arguments after `llorch <role>`, as `llorch` itself would find it:
 * an argument that is no flag, a flag the component does not have, a missing value, and a
 * value the component's flag table refuses (a port that is no number, an unknown choice).
 * Values of the not-yet-merged flags are not checked. Empty when the command line would start.
 */
export function commandLineProblems(role: Role, args: readonly string[]): string[] {
  const table = new Map(COMMANDS[role].flags.map((spec) => [spec.name, spec]));
  const pending = new Set(NOT_YET_MERGED_FLAGS[role]);
  const problems: string[] = [];
  const flags: FlagValues = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) {
      problems.push(`${role}: "${arg}" is no flag (llorch ${role} takes no positional argument)`);
      continue;
    }
    const name = arg.slice(2);
    const spec = table.get(name);
    if (!spec && !pending.has(name)) {
      problems.push(`${role}: --${name} is not a flag of llorch ${role}`);
      if (args[i + 1] !== undefined && !args[i + 1]!.startsWith("--")) i++; // its value, most likely
      continue;
    }
    if (spec?.arg === "") {
      flags[name] = true;
      continue;
    }
    const value = args[i + 1];
    if (value === undefined || value.startsWith("--")) {
      problems.push(`${role}: --${name} needs a value`);
      continue;
    }
    i++;
    if (spec) flags[name] = value;
  }
  try {
    COMMANDS[role].configFromFlags(flags, {});
  } catch (err) {
    problems.push(`${role}: ${(err as Error).message}`);
  }
  return problems;
}
