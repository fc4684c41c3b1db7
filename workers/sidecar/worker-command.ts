import { apiKeyFrom, ownKeyFrom } from "../../contracts/runtime/api-key.js";
import type { ComponentCommand } from "../../contracts/runtime/component-command.js";
import { helpLine } from "../../contracts/runtime/flag-table.js";
import { startWorker } from "./worker.js";
import { WORKER_FLAGS, workerConfigFromFlags, workerFlagHelp, type WorkerConfig } from "./worker-config.js";

/** Engine API keys (OpenAI-compatible servers) come from here only: never a flag, never the config file. */
const ENGINE_API_KEY_ENV = "LLORCH_ENGINE_API_KEY";

/** `llorch worker`: what the command line needs to know to run a sidecar. */
export const workerCommand: ComponentCommand<WorkerConfig> = {
  name: "worker",
  summary: "run a worker sidecar (the mock, llama.cpp in-process, or an engine server)",
  help: [
    "llorch worker — a worker sidecar serving one engine over gRPC (the mock, llama.cpp in-process for a .gguf --model, or an engine server at --engine-url)",
    "",
    workerFlagHelp,
    helpLine("--config FILE", 'YAML config file (flags under "worker:")', 30),
    "",
    "WorkerService takes only worker keys (core's): one of --keys-file, or LLORCH_API_KEY, which holds every role.",
    "The sidecar registers with core presenting LLORCH_KEY (a worker key; default LLORCH_API_KEY). Without a key",
    "it refuses to listen beyond loopback.",
    "",
  ].join("\n"),
  flags: WORKER_FLAGS,
  configFromFlags: (flags) => ({
    ...workerConfigFromFlags(flags),
    coreApiKey: ownKeyFrom(flags),
    apiKey: apiKeyFrom(flags),
    engineApiKey: process.env[ENGINE_API_KEY_ENV] || undefined,
  }),
  start: (config) => startWorker(config),
};
