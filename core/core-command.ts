import type { ComponentCommand } from "../contracts/runtime/component-command.js";
import { startCore } from "./core.js";
import { CORE_FLAGS, coreConfigFromFlags, coreHelp, type CoreConfig } from "./core-config.js";

/** `llorch core`: what the command line needs to know to run core. */
export const coreCommand: ComponentCommand<CoreConfig> = {
  name: "core",
  summary: "run the core scheduler",
  help: coreHelp,
  flags: CORE_FLAGS,
  structuredKeys: ["session-budgets"],
  configFromFlags: coreConfigFromFlags,
  start: (config) => startCore(config),
};
