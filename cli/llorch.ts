#!/usr/bin/env node
// The one program that may know every layer: it reads each component's
// command description and dispatches `llorch up|core|edge|worker` to it.
import { parseArgs } from "node:util";
import type { ComponentCommand } from "../contracts/runtime/component-command.js";
import { mergeFlags, readConfigFile, sectionFlags } from "../contracts/runtime/config-file.js";
import { parseArgsOptions, type FlagTable, type FlagValues } from "../contracts/runtime/flag-table.js";
import { coreCommand } from "../core/core-command.js";
import { edgeCommand } from "../edge/edge-command.js";
import { workerCommand } from "../workers/sidecar/worker-command.js";
import { runUp } from "./up.js";
import { UP_FLAGS, upHelp } from "./up-config.js";

interface Command {
  name: string;
  summary: string;
  help: string;
  flags: FlagTable<unknown>;
  structuredKeys?: readonly string[];
  /** Resolves once the command's servers run: they, not this promise, keep the process alive. */
  run(flags: FlagValues, file: Record<string, unknown>, configPath?: string): Promise<void>;
}

/** Runs a long-lived component until SIGINT/SIGTERM, then stops it cleanly. */
async function serve(start: () => Promise<{ stop(): Promise<void> }>): Promise<void> {
  const running = await start();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(1), 5_000);
    force.unref();
    await running.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
}

function component(c: ComponentCommand<unknown>): Command {
  return {
    name: c.name,
    summary: c.summary,
    help: c.help,
    flags: c.flags,
    structuredKeys: c.structuredKeys,
    run: (flags, file) => serve(() => c.start(c.configFromFlags(flags, (file[c.name] ?? {}) as Record<string, unknown>))),
  };
}

const commands: readonly Command[] = [
  {
    name: "up",
    summary: "start core, edge and mock worker sidecars together (the demo, and what npm start runs)",
    help: upHelp,
    flags: UP_FLAGS,
    run: runUp,
  },
  component(coreCommand),
  component(edgeCommand),
  component(workerCommand),
];

const usage = `llorch — the llama-orch command line

Usage: llorch <command> [flags]

Commands:
${commands.map((c) => `  ${c.name.padEnd(8)} ${c.summary}`).join("\n")}

Run "llorch <command> --help" for its flags. Every command takes --config FILE (YAML).
`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage);
    return name ? 0 : 2;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`llorch: unknown command "${name}"\n\n${usage}`);
    return 2;
  }
  const options = {
    config: { type: "string" as const },
    help: { type: "boolean" as const, short: "h" },
    ...parseArgsOptions(command.flags),
  };
  let values: FlagValues;
  try {
    values = parseArgs({ args: rest, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    process.stderr.write(`llorch ${name}: ${(err as Error).message}\n\n${command.help}`);
    return 2;
  }
  if (values["help"]) {
    process.stdout.write(command.help);
    return 0;
  }
  const configPath = values["config"] as string | undefined;
  delete values["config"];
  try {
    const file = configPath ? readConfigFile(configPath) : {};
    await command.run(mergeFlags(sectionFlags(file[name], name, command.structuredKeys), values), file, configPath);
    return -1; // keep running: the command's servers hold the process open
  } catch (err) {
    process.stderr.write(`llorch ${name}: ${(err as Error).message}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`llorch: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
