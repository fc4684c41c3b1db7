import type { FlagTable, FlagValues } from "./flag-table.js";

/**
 * What a component (core, the edge, a worker sidecar) tells the command line
 * about itself, so `llorch <name>` can run it knowing nothing of its insides:
 * the flags it reads, its `--help`, how flags become its config, how it starts.
 */
export interface ComponentCommand<C> {
  /** `llorch <name>`, and the section of the config file it reads. */
  name: string;
  /** Its line in `llorch --help`. */
  summary: string;
  /** The whole `llorch <name> --help` text. */
  help: string;
  flags: FlagTable<C>;
  /** Keys of its config section that are structured settings, not flags; configFromFlags reads them from the section. */
  structuredKeys?: readonly string[];
  /** Flags (the command line's over its config section's) to its config; throws an Error naming a bad flag. */
  configFromFlags(flags: FlagValues, section: Record<string, unknown>): C;
  /**
   * Starts the component; it serves until stopped. `stop` drains for up to
   * `shutdownGraceMs` (what SIGTERM gives it) before it ends what is left.
   */
  start(config: C): Promise<{ stop(): Promise<void>; shutdownGraceMs?: number }>;
}
