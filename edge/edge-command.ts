import type { ComponentCommand } from "../contracts/runtime/component-command.js";
import { startEdge } from "./edge.js";
import { EDGE_FLAGS, edgeConfigFromFlags, edgeHelp, type EdgeConfig } from "./edge-config.js";

/** `llorch edge`: what the command line needs to know to run the edge. */
export const edgeCommand: ComponentCommand<EdgeConfig> = {
  name: "edge",
  summary: "run the public HTTP API",
  help: edgeHelp,
  flags: EDGE_FLAGS,
  structuredKeys: ["models"],
  configFromFlags: (flags, section) => edgeConfigFromFlags(flags, section),
  start: (config) => startEdge(config),
};
