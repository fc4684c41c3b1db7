/** Flags as the command line and a config section give them: a string, or a boolean for a switch. */
export type FlagValues = Record<string, string | boolean | undefined>;

/**
 * One flag of a component. A component's table of these is the one place its
 * flags are described: the command line's parser, `--help` and the mapping
 * onto the component's config all come from it, so they cannot disagree.
 */
export interface FlagSpec<C> {
  name: string;
  /** Placeholder in the help text, e.g. "N"; "" makes the flag a switch (given means true). */
  arg: string;
  /**
   * What `--help` says about it; each "\n" starts a line under the first, and a
   * leading "\n" puts it all under the flag. Left out only when the `usage` of
   * the flag before it describes this one too.
   */
  help?: string;
  /** The flag column of the help when it is not `--name arg`: one line for several related flags. */
  usage?: string;
  /** Sets the flag's value on the config; throws an Error naming `flag` when the value is bad. */
  apply(config: C, value: string | boolean, flag: string): void;
}

export type FlagTable<C> = readonly FlagSpec<C>[];

/**
 * Applies each flag of the table that `flags` holds (keys with or without
 * leading dashes) to `config`, in table order. Keys the table does not know
 * are the caller's business (e.g. `api-key` from a config section).
 */
export function applyFlags<C>(table: FlagTable<C>, flags: FlagValues, config: C): C {
  const given = new Map(Object.entries(flags).map(([key, value]) => [key.replace(/^-+/, ""), value]));
  for (const spec of table) {
    const value = given.get(spec.name);
    if (value !== undefined) spec.apply(config, value, `--${spec.name}`);
  }
  return config;
}

export function flagNames(table: FlagTable<unknown>): string[] {
  return table.map((spec) => spec.name);
}

/** The table as node:util parseArgs options: switches are booleans, every other flag takes a value. */
export function parseArgsOptions(table: FlagTable<unknown>): Record<string, { type: "string" | "boolean" }> {
  return Object.fromEntries(table.map((spec) => [spec.name, { type: spec.arg === "" ? "boolean" : "string" }]));
}

/** The table's lines of a `--help` text, help starting `width` characters after the indent. */
export function flagHelp(table: FlagTable<unknown>, width: number): string {
  return table
    .filter((spec) => spec.help !== undefined)
    .map((spec) => helpLine(spec.usage ?? `--${spec.name}${spec.arg ? ` ${spec.arg}` : ""}`, spec.help!, width))
    .join("\n");
}

/** `  --flag ARG   what it does`; a flag wider than the column keeps two spaces before its help. */
export function helpLine(usage: string, help: string, width: number): string {
  const [first, ...rest] = help.split("\n");
  const indent = " ".repeat(2 + width + 1);
  const head = first === "" ? `  ${usage}` : usage.length <= width ? `  ${usage.padEnd(width)} ${first}` : `  ${usage}  ${first}`;
  return [head, ...rest.map((line) => indent + line)].join("\n");
}
