import { DEFAULT_CORE_CONFIG, startCore, type CoreConfig } from "../core.js";
import { DEFAULT_EDGE_CONFIG, startEdge, type EdgeConfig } from "../../edge/edge.js";
import { DEFAULT_SCHEDULER_OPTIONS } from "../scheduler/scheduler.js";
import type { FlagValues } from "./config-file.js";
import { intFlag, optionalIntFlag, stringFlag } from "./flags.js";

export const CORE_FLAGS = ["host", "port", "metrics-host", "metrics-port", "queue-capacity", "task-retention-ms"] as const;
export const EDGE_FLAGS = ["host", "port", "core", "body-limit-bytes"] as const;

export const coreHelp = `llorch core — the scheduler (gRPC: TaskService, RegistryService, reflection, health)

Flags (each also settable under "core:" in --config):
  --host H               listen address (default ${DEFAULT_CORE_CONFIG.host})
  --port N               gRPC port, 0 = ephemeral (default ${DEFAULT_CORE_CONFIG.port})
  --metrics-host H       Prometheus listen address (default: --host)
  --metrics-port N       serve GET /metrics on this port (default: off)
  --queue-capacity N     bound of each pool's queue (default ${DEFAULT_SCHEDULER_OPTIONS.queueCapacity})
  --task-retention-ms N  how long finished tasks stay streamable (default ${DEFAULT_SCHEDULER_OPTIONS.taskRetentionMs})
  --config FILE          YAML config file
`;

export const edgeHelp = `llorch edge — the public HTTP API (OpenAPI at /openapi.json, SSE streams)

Flags (each also settable under "edge:" in --config):
  --host H               listen address (default ${DEFAULT_EDGE_CONFIG.host})
  --port N               HTTP port, 0 = ephemeral (default ${DEFAULT_EDGE_CONFIG.port})
  --core HOST:PORT       core's gRPC address (default ${DEFAULT_EDGE_CONFIG.coreAddress})
  --body-limit-bytes N   largest request body accepted (default ${DEFAULT_EDGE_CONFIG.bodyLimitBytes})
  --config FILE          YAML config file
`;

export function coreConfigFromFlags(f: FlagValues): CoreConfig {
  return {
    host: stringFlag(f, "host", DEFAULT_CORE_CONFIG.host),
    port: intFlag(f, "port", DEFAULT_CORE_CONFIG.port, 0, 65535),
    metricsHost: f["metrics-host"] === undefined ? undefined : stringFlag(f, "metrics-host", ""),
    metricsPort: optionalIntFlag(f, "metrics-port"),
    scheduler: {
      ...DEFAULT_SCHEDULER_OPTIONS,
      queueCapacity: intFlag(f, "queue-capacity", DEFAULT_SCHEDULER_OPTIONS.queueCapacity, 1, 1_000_000),
      taskRetentionMs: intFlag(f, "task-retention-ms", DEFAULT_SCHEDULER_OPTIONS.taskRetentionMs, 0),
    },
  };
}

export function edgeConfigFromFlags(f: FlagValues): EdgeConfig {
  return {
    host: stringFlag(f, "host", DEFAULT_EDGE_CONFIG.host),
    port: intFlag(f, "port", DEFAULT_EDGE_CONFIG.port, 0, 65535),
    coreAddress: stringFlag(f, "core", DEFAULT_EDGE_CONFIG.coreAddress),
    bodyLimitBytes: intFlag(f, "body-limit-bytes", DEFAULT_EDGE_CONFIG.bodyLimitBytes, 1),
  };
}

export { startCore, startEdge };
