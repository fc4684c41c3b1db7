import { applyFlags, flagHelp, helpLine, type FlagTable, type FlagValues } from "../contracts/runtime/flag-table.js";
import { flagBoolean, flagInteger, flagText } from "../contracts/runtime/flag-values.js";
import { logFormatFlag, type LogFormat } from "../contracts/runtime/log-format.js";

/** What `llorch up` starts; the processes themselves read their own flags. */
export interface UpConfig {
  /** Every process listens here. */
  host: string;
  edgePort: number;
  corePort: number;
  /** Core's metrics take the first free port from here, each sidecar's the next free one; 0: every metrics port ephemeral. */
  metricsPort: number;
  /** Mock sidecars to start when the config file has no `workers:` list. */
  workers: number;
  slots: number;
  tokensPerSecond: number;
  engine: string;
  model: string;
  /** The embedded engine's llama.cpp threads per sidecar; unset lets each sidecar choose. */
  threads?: number;
  /** Do not echo the processes' JSON logs. */
  quiet: boolean;
  /** The processes' log lines; undefined: LLORCH_LOG_FORMAT, else pretty when this terminal shows them. */
  logFormat?: LogFormat;
}

export const UP_DEFAULTS: UpConfig = {
  host: "127.0.0.1",
  edgePort: 8080,
  corePort: 50051,
  // The ports deploy/prometheus/prometheus.yml scrapes.
  metricsPort: 9464,
  workers: 2,
  slots: 4,
  tokensPerSecond: 25,
  engine: "llamacpp",
  model: "mock:tiny",
  quiet: false,
};

const D = UP_DEFAULTS;

export const UP_FLAGS: FlagTable<UpConfig> = [
  { name: "host", arg: "H", help: `address for everything (default ${D.host})`, apply: (c, v, f) => (c.host = flagText(f, v)) },
  {
    name: "edge-port",
    arg: "N",
    help: `public HTTP port (default ${D.edgePort})`,
    apply: (c, v, f) => (c.edgePort = flagInteger(f, v, 0, 65_535)),
  },
  {
    name: "core-port",
    arg: "N",
    help: `core gRPC port (default ${D.corePort})`,
    apply: (c, v, f) => (c.corePort = flagInteger(f, v, 0, 65_535)),
  },
  {
    name: "metrics-port",
    arg: "N",
    help: `core's metrics on the first free port from N, the sidecars' on the next ones, 0 = ephemeral (default ${D.metricsPort})`,
    apply: (c, v, f) => (c.metricsPort = flagInteger(f, v, 0, 65_535)),
  },
  {
    name: "workers",
    arg: "N",
    help: `sidecars to start when the config has no workers: list (default ${D.workers})`,
    apply: (c, v, f) => (c.workers = flagInteger(f, v, 1, 64)),
  },
  {
    name: "slots",
    arg: "N",
    help: `slots (parallel generations) per sidecar (default ${D.slots})`,
    apply: (c, v, f) => (c.slots = flagInteger(f, v, 1, 1024)),
  },
  {
    name: "tokens-per-second",
    arg: "N",
    help: `mock decode speed, 0 = as fast as possible (default ${D.tokensPerSecond})`,
    apply: (c, v, f) => (c.tokensPerSecond = flagInteger(f, v, 0)),
  },
  {
    name: "engine",
    arg: "NAME",
    help: `engine family the sidecars serve (default ${D.engine})`,
    apply: (c, v, f) => (c.engine = flagText(f, v)),
  },
  {
    name: "model",
    arg: "REF",
    help: `model the sidecars serve: a local GGUF file (file:/models/qwen.gguf, or one from\n"llorch demo-model PATH") runs real llama.cpp in every sidecar; the default ${D.model} is the mock`,
    apply: (c, v, f) => (c.model = flagText(f, v)),
  },
  {
    name: "threads",
    arg: "N",
    help: "llama.cpp threads per sidecar with a GGUF --model (default: each sidecar takes half the cores)",
    apply: (c, v, f) => (c.threads = flagInteger(f, v, 1, 1024)),
  },
  { name: "quiet", arg: "", help: "do not echo the processes' JSON logs", apply: (c, v, f) => (c.quiet = flagBoolean(f, v)) },
  logFormatFlag(),
];

const HELP_WIDTH = 24;

export const upHelp = [
  "llorch up — core, edge and worker sidecars on this machine, in one command (mock sidecars, or real llama.cpp with --model FILE.gguf)",
  "",
  'Flags (also settable under "up:" in --config; "core:", "edge:" and a "workers:" list',
  "of worker sections are passed to those processes):",
  flagHelp(UP_FLAGS, HELP_WIDTH),
  helpLine("--config FILE", "YAML config file", HELP_WIDTH),
  "",
].join("\n");

export function upConfigFromFlags(flags: FlagValues): UpConfig {
  return applyFlags(UP_FLAGS, flags, { ...UP_DEFAULTS });
}
