#!/usr/bin/env node
// The one program that may know every layer: it reads each component's
// command description and dispatches `llorch up|core|edge|worker` to it.
import { parseArgs } from "node:util";
import type { ComponentCommand } from "../contracts/runtime/component-command.js";
import { mergeFlags, readConfigFile, sectionFlags } from "../contracts/runtime/config-file.js";
import { abandonStdoutIfPiped } from "../contracts/runtime/logger.js";
import { applyFlags, parseArgsOptions, type FlagTable, type FlagValues } from "../contracts/runtime/flag-table.js";
import { startTracing, type Tracing } from "../contracts/runtime/tracing.js";
import { coreCommand } from "../core/core-command.js";
import { edgeCommand } from "../edge/edge-command.js";
import { workerCommand } from "../workers/sidecar/worker-command.js";
import { DEFAULT_EDGE_URL, runStatusCommand, STATUS_FLAGS, statusHelp } from "./status.js";
import { onParentGone } from "./parent-watch.js";
import { DEMO_MODEL_FLAGS, demoModelHelp, writeDemoModel } from "./demo-model.js";
import { KEY_FLAGS, keyHelp, runKeyCommand } from "./key.js";
import { runUp } from "./up.js";
import { UP_FLAGS, upHelp } from "./up-config.js";

interface Command {
  name: string;
  summary: string;
  help: string;
  flags: FlagTable<unknown>;
  structuredKeys?: readonly string[];
  /** The command takes positional arguments (e.g. a path). */
  positionals?: boolean;
  /**
   * Resolves once the command's servers run: they, not this promise, keep the
   * process alive. A one-shot command resolves "done" when its work is done.
   */
  run(flags: FlagValues, file: Record<string, unknown>, configPath?: string, positionals?: string[]): Promise<void | "done">;
}

/** Runs a long-lived component until SIGINT/SIGTERM or its parent's death, then stops it cleanly and exports the spans still buffered. */
async function serve(start: () => Promise<{ stop(): Promise<void>; shutdownGraceMs?: number }>, tracing?: Tracing): Promise<void> {
  let parentGone = false;
  let stopNow = () => {};
  onParentGone(() => {
    // The parent read our stdout: what is written there now goes nowhere (and could keep us from exiting).
    abandonStdoutIfPiped();
    parentGone = true;
    stopNow();
  });
  const running = await start();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    // The drain has its grace; closing servers and stores after it has a few seconds more.
    const force = setTimeout(() => process.exit(1), (running.shutdownGraceMs ?? 0) + 5_000);
    force.unref();
    await running.stop();
    await tracing?.shutdown().catch(() => {});
    process.exit(0);
  };
  stopNow = () => void stop();
  process.on("SIGINT", stopNow);
  process.on("SIGTERM", stopNow);
  if (parentGone) stopNow();
}

function component(c: ComponentCommand<unknown>): Command {
  return {
    name: c.name,
    summary: c.summary,
    help: c.help,
    flags: c.flags,
    structuredKeys: c.structuredKeys,
    run: async (flags, file) => {
      const config = c.configFromFlags(flags, (file[c.name] ?? {}) as Record<string, unknown>);
      // Before the component starts, so its first request is traced.
      await serve(async () => c.start(config), await startTracing(c.name));
    },
  };
}

const commands: readonly Command[] = [
  {
    name: "up",
    summary: "start core, edge and worker sidecars together (mock, or --model FILE.gguf for real llama.cpp; what npm start runs)",
    help: upHelp,
    flags: UP_FLAGS,
    run: runUp,
  },
  component(coreCommand),
  component(edgeCommand),
  component(workerCommand),
  ...(["status", "tasks", "cancel", "verify"] as const).map((name): Command => ({
    name,
    summary: {
      status: "pools, replicas, queues, running tasks and models, through the public API (--edge URL, --json)",
      tasks: "queued and running tasks (--state finished for recent ones)",
      cancel: "cancel a task: llorch cancel TASK_ID",
      verify: "check a catalog model's digest, with a progress bar: llorch verify MODEL_ID",
    }[name],
    help: statusHelp,
    flags: STATUS_FLAGS,
    positionals: name === "cancel" || name === "verify",
    run: async (flags, _file, _configPath, positionals = []) => {
      await runStatusCommand(name, applyFlags(STATUS_FLAGS, flags, { edge: DEFAULT_EDGE_URL, json: false }), positionals);
      return "done";
    },
  })),
  {
    name: "key",
    summary: "a new random key and its sha256 line for a --keys-file (llorch key NAME --role client|admin|worker)",
    help: keyHelp,
    flags: KEY_FLAGS,
    positionals: true,
    run: (flags, _file, _configPath, positionals = []) => {
      runKeyCommand(positionals, applyFlags(KEY_FLAGS, flags, { role: "client", fromStdin: false }));
      return Promise.resolve("done");
    },
  },
  {
    name: "demo-model",
    summary: "write a small random-weight GGUF model to try the embedded llama.cpp engine with",
    help: demoModelHelp,
    flags: DEMO_MODEL_FLAGS,
    positionals: true,
    run: async (flags, _file, _configPath, positionals = []) => {
      if (positionals.length > 1) throw new Error(`one PATH, got ${positionals.length}`);
      await writeDemoModel(positionals[0], applyFlags(DEMO_MODEL_FLAGS, flags, {}));
      return "done";
    },
  },
];

const NAME_WIDTH = Math.max(...commands.map((c) => c.name.length));

const usage = `llorch — the llama-orch command line

Usage: llorch <command> [flags]

Commands:
${commands.map((c) => `  ${c.name.padEnd(NAME_WIDTH)} ${c.summary}`).join("\n")}

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
  let positionals: string[];
  try {
    const parsed = parseArgs({ args: rest, options, strict: true, allowPositionals: command.positionals === true });
    values = parsed.values;
    positionals = parsed.positionals;
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
    const outcome = await command.run(
      mergeFlags(sectionFlags(file[name], name, command.structuredKeys), values),
      file,
      configPath,
      positionals,
    );
    return outcome === "done" ? 0 : -1; // else keep running: the command's servers hold the process open
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
