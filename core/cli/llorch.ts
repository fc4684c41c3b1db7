#!/usr/bin/env node
import { parseArgs } from "node:util";
import { createLogger } from "../../contracts/runtime/logger.js";
import { startWorker, workerConfigFromFlags, workerFlagHelp, workerFlagNames } from "../../workers/sidecar/worker.js";
import { apiKeyFrom, CORE_FLAGS, coreConfigFromFlags, coreHelp, EDGE_FLAGS, edgeConfigFromFlags, edgeHelp, startCore, startEdge } from "./commands.js";
import { mergeFlags, readConfigFile, sectionFlags, type FlagValues } from "./config-file.js";
import { runUp, UP_FLAGS, upHelp } from "./up.js";


const usage = `llorch — the llama-orch command line

Usage: llorch <command> [flags]

Commands:
  up       start core, edge and mock worker sidecars together (the demo, and what npm start runs)
  core     run the core scheduler
  edge     run the public HTTP API
  worker   run a worker sidecar (mock engine)

Run "llorch <command> --help" for its flags. Every command takes --config FILE (YAML).
`;

interface Command {
  help: string;
  strings: readonly string[];
  booleans?: readonly string[];
  run(flags: FlagValues, file: Record<string, unknown>, configPath?: string): Promise<void>;
}

/** Runs a long-lived component until SIGINT/SIGTERM, then stops it cleanly. */
async function serve(name: string, start: () => Promise<{ stop(): Promise<void> }>): Promise<void> {
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
  void name;
}

const commands: Record<string, Command> = {
  up: {
    help: upHelp,
    strings: UP_FLAGS.filter((f) => f !== "quiet"),
    booleans: ["quiet"],
    run: (flags, file, configPath) => runUp(flags, file, sectionFlags, configPath),
  },
  core: {
    help: coreHelp,
    strings: CORE_FLAGS,
    booleans: ["auto-fetch"],
    run: (flags, file) => serve("core", () => startCore(coreConfigFromFlags(flags, file["core"] as Record<string, unknown> | undefined), createLogger("core"))),
  },
  edge: {
    help: edgeHelp,
    strings: EDGE_FLAGS,
    booleans: ["auth-optional"],
    run: (flags) => serve("edge", () => startEdge(edgeConfigFromFlags(flags), createLogger("edge"))),
  },
  worker: {
    help: `llorch worker — a worker sidecar serving one engine over gRPC (mock engine)\n\n${workerFlagHelp}\n  --config FILE                  YAML config file (flags under "worker:")\n`,
    strings: workerFlagNames,
    run: (flags) => serve("worker", () => startWorker({ ...workerConfigFromFlags(flags), coreApiKey: apiKeyFrom(flags), engineApiKey: process.env.LLORCH_ENGINE_API_KEY || undefined })),
  },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`llorch: unknown command "${name}"\n\n${usage}`);
    return 2;
  }
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = { config: { type: "string" }, help: { type: "boolean", short: "h" } };
  for (const f of command.strings) options[f] = { type: "string" };
  for (const f of command.booleans ?? []) options[f] = { type: "boolean" };
  let values: FlagValues;
  try {
    values = parseArgs({ args: rest, options, strict: true, allowPositionals: false }).values as FlagValues;
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
    const flags = name === "up" ? mergeFlags(sectionFlags(file["up"], "up"), values) : mergeFlags(sectionFlags(file[name], name), values);
    await command.run(flags, file, configPath);
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
