import { DEFAULT_CORE_CONFIG, startCore, type CoreConfig } from "../core.js";
import { DEFAULT_EDGE_CONFIG, startEdge, type EdgeConfig } from "../../edge/edge.js";
import type { RateLimit } from "../../edge/middleware/rate-limit.js";
import { DEFAULT_SCHEDULER_OPTIONS } from "../scheduler/scheduler.js";
import type { FlagValues } from "./config-file.js";
import { API_KEY_ENV } from "../../contracts/runtime/api-key.js";
import { choiceFlag, intFlag, numberFlag, optionalIntFlag, optionalNumberFlag, stringFlag } from "./flags.js";
import { QUEUE_FULL_POLICIES } from "../scheduler/queue-policy.js";
import { DEFAULT_SESSION_OPTIONS, type BudgetLimits } from "../sessions/session-store.js";

export const CORE_FLAGS = [
  "host", "port", "metrics-host", "metrics-port", "queue-capacity", "queue-policy", "task-retention-ms",
  "wall-timeout-ms", "idle-timeout-ms", "metrics-interval-ms", "disconnect-grace-ms",
  "session-ttl-ms", "session-max-turns", "session-token-budget", "session-time-budget-ms", "session-cost-budget", "cost-per-1k-tokens",
  "catalog-root", "artifacts-root", "artifact-max-bytes", "transcripts",
] as const;
export const EDGE_FLAGS = ["host", "port", "core", "body-limit-bytes", "sse-heartbeat-ms", "rate-limit-per-second", "rate-limit-burst"] as const;

export const coreHelp = `llorch core — the scheduler (gRPC: TaskService, RegistryService, reflection, health)

Flags (each also settable under "core:" in --config):
  --host H               listen address (default ${DEFAULT_CORE_CONFIG.host})
  --port N               gRPC port, 0 = ephemeral (default ${DEFAULT_CORE_CONFIG.port})
  --metrics-host H       Prometheus listen address (default: --host)
  --metrics-port N       serve GET /metrics on this port (default: off)
  --queue-capacity N     bound of each pool's queue (default ${DEFAULT_SCHEDULER_OPTIONS.queueCapacity})
  --queue-policy P       when a queue is full: reject | drop-lru | shed-low-priority (default ${DEFAULT_SCHEDULER_OPTIONS.queuePolicy})
  --task-retention-ms N  how long finished tasks stay streamable (default ${DEFAULT_SCHEDULER_OPTIONS.taskRetentionMs})
  --wall-timeout-ms N    watchdog: longest run from dispatch, 0 = none (default ${DEFAULT_SCHEDULER_OPTIONS.wallTimeoutMs})
  --idle-timeout-ms N    watchdog: longest gap between tokens, 0 = none (default ${DEFAULT_SCHEDULER_OPTIONS.idleTimeoutMs})
  --metrics-interval-ms N  cadence of metrics frames on running streams, 0 = none (default ${DEFAULT_SCHEDULER_OPTIONS.metricsIntervalMs})
  --disconnect-grace-ms N  cancel a task this long after its last stream closed, 0 = at once (default ${DEFAULT_SCHEDULER_OPTIONS.disconnectGraceMs})
  --session-ttl-ms N     idle lifetime of a session (default ${DEFAULT_SESSION_OPTIONS.ttlMs})
  --session-max-turns N  tasks per session (default ${DEFAULT_SESSION_OPTIONS.maxTurns})
  --session-token-budget N, --session-time-budget-ms N, --session-cost-budget X
                         default per-session budgets (default: unlimited); per-session
                         overrides go in the config file under core.session-budgets
  --cost-per-1k-tokens X cost units charged per 1000 tokens in and out (default 0)
  --catalog-root DIR     durable model catalog (default ${DEFAULT_CORE_CONFIG.catalogRoot})
  --artifacts-root DIR   durable artifacts, stream transcripts included (default ${DEFAULT_CORE_CONFIG.artifactsRoot})
  --artifact-max-bytes N largest artifact a client may store (default ${DEFAULT_CORE_CONFIG.artifactMaxBytes})
  --transcripts on|off   keep every finished stream's SSE transcript as a trace artifact (default on)
  --auto-fetch           load a model no pool serves into an idle pool of its engine on demand (default off:
                         such tasks get an advisory POOL_UNAVAILABLE)

The API key comes from LLORCH_API_KEY (or api-key under "core:" in --config);
every llama_orch service call must present it (reflection and health stay open). Without a key core refuses
to listen beyond loopback.
  --config FILE          YAML config file
`;

export const edgeHelp = `llorch edge — the public HTTP API (OpenAPI at /openapi.json, SSE streams)

Flags (each also settable under "edge:" in --config):
  --host H               listen address (default ${DEFAULT_EDGE_CONFIG.host})
  --port N               HTTP port, 0 = ephemeral (default ${DEFAULT_EDGE_CONFIG.port})
  --core HOST:PORT       core's gRPC address (default ${DEFAULT_EDGE_CONFIG.coreAddress})
  --body-limit-bytes N   largest request body accepted (default ${DEFAULT_EDGE_CONFIG.bodyLimitBytes})
  --sse-heartbeat-ms N   comment line on idle SSE streams, 0 = off (default ${DEFAULT_EDGE_CONFIG.sseHeartbeatMs})
  --rate-limit-per-second X  /v1 requests per second per caller (API key, else address), 0 = off (default 0)
  --rate-limit-burst N   submissions a caller may make at once (default: the per-second rate, at least 1)
  --auth-optional        loopback clients may omit the API key (identity=localhost)

The API key comes from LLORCH_API_KEY (or api-key under "edge:" in --config);
clients send it as Authorization: Bearer <key>, and the edge presents it to core.
Without a key the edge refuses to listen beyond loopback.
  --config FILE          YAML config file
`;

export function coreConfigFromFlags(f: FlagValues, fileSection?: Record<string, unknown>): CoreConfig {
  const perSessionBudgets = sessionBudgetsFromConfig(fileSection?.["session-budgets"]);
  return {
    host: stringFlag(f, "host", DEFAULT_CORE_CONFIG.host),
    port: intFlag(f, "port", DEFAULT_CORE_CONFIG.port, 0, 65535),
    metricsHost: f["metrics-host"] === undefined ? undefined : stringFlag(f, "metrics-host", ""),
    metricsPort: optionalIntFlag(f, "metrics-port"),
    scheduler: {
      ...DEFAULT_SCHEDULER_OPTIONS,
      queueCapacity: intFlag(f, "queue-capacity", DEFAULT_SCHEDULER_OPTIONS.queueCapacity, 1, 1_000_000),
      taskRetentionMs: intFlag(f, "task-retention-ms", DEFAULT_SCHEDULER_OPTIONS.taskRetentionMs, 0),
      queuePolicy: choiceFlag(f, "queue-policy", DEFAULT_SCHEDULER_OPTIONS.queuePolicy, QUEUE_FULL_POLICIES),
      wallTimeoutMs: intFlag(f, "wall-timeout-ms", DEFAULT_SCHEDULER_OPTIONS.wallTimeoutMs, 0),
      idleTimeoutMs: intFlag(f, "idle-timeout-ms", DEFAULT_SCHEDULER_OPTIONS.idleTimeoutMs, 0),
      metricsIntervalMs: intFlag(f, "metrics-interval-ms", DEFAULT_SCHEDULER_OPTIONS.metricsIntervalMs, 0),
      disconnectGraceMs: intFlag(f, "disconnect-grace-ms", DEFAULT_SCHEDULER_OPTIONS.disconnectGraceMs, 0),
    },
    sessions: {
      ...DEFAULT_SESSION_OPTIONS,
      ttlMs: intFlag(f, "session-ttl-ms", DEFAULT_SESSION_OPTIONS.ttlMs, 1),
      maxTurns: intFlag(f, "session-max-turns", DEFAULT_SESSION_OPTIONS.maxTurns, 1),
      defaultBudgets: {
        tokens: optionalIntFlag(f, "session-token-budget", 0, Number.MAX_SAFE_INTEGER),
        timeMs: optionalIntFlag(f, "session-time-budget-ms", 0, Number.MAX_SAFE_INTEGER),
        cost: optionalNumberFlag(f, "session-cost-budget"),
      },
      perSessionBudgets: perSessionBudgets,
      costPerThousandTokens: numberFlag(f, "cost-per-1k-tokens", DEFAULT_SESSION_OPTIONS.costPerThousandTokens),
    },
    apiKey: apiKeyFrom(f),
    catalogRoot: stringFlag(f, "catalog-root", DEFAULT_CORE_CONFIG.catalogRoot),
    artifactsRoot: stringFlag(f, "artifacts-root", DEFAULT_CORE_CONFIG.artifactsRoot),
    artifactMaxBytes: intFlag(f, "artifact-max-bytes", DEFAULT_CORE_CONFIG.artifactMaxBytes, 1),
    autoFetch: f["auto-fetch"] === true || f["auto-fetch"] === "true",
    transcripts: choiceFlag(f, "transcripts", "on", ["on", "off"] as const) === "on",
  };
}

export function edgeConfigFromFlags(f: FlagValues): EdgeConfig {
  return {
    host: stringFlag(f, "host", DEFAULT_EDGE_CONFIG.host),
    port: intFlag(f, "port", DEFAULT_EDGE_CONFIG.port, 0, 65535),
    coreAddress: stringFlag(f, "core", DEFAULT_EDGE_CONFIG.coreAddress),
    bodyLimitBytes: intFlag(f, "body-limit-bytes", DEFAULT_EDGE_CONFIG.bodyLimitBytes, 1),
    sseHeartbeatMs: intFlag(f, "sse-heartbeat-ms", DEFAULT_EDGE_CONFIG.sseHeartbeatMs, 0),
    rateLimit: rateLimitFromFlags(f),
    apiKey: apiKeyFrom(f),
    authOptionalOnLoopback: f["auth-optional"] === true || f["auth-optional"] === "true",
  };
}

export { startCore, startEdge };

/**
 * `session-budgets:` in the core section: per-session overrides of the
 * default budgets, `{<session id>: {tokens, time-ms, cost}}`.
 */
function sessionBudgetsFromConfig(raw: unknown): Record<string, BudgetLimits> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== "object" || Array.isArray(raw)) throw new Error("config: core.session-budgets must be a mapping of session id to budgets");
  const out: Record<string, BudgetLimits> = {};
  for (const [id, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`config: core.session-budgets.${id} must be a mapping`);
    const b = v as Record<string, unknown>;
    const num = (k: string): number | undefined => {
      if (b[k] === undefined) return undefined;
      if (typeof b[k] !== "number" || !Number.isFinite(b[k]) || (b[k] as number) < 0) throw new Error(`config: core.session-budgets.${id}.${k} must be a non-negative number`);
      return b[k] as number;
    };
    out[id.toLowerCase()] = { tokens: num("tokens"), timeMs: num("time-ms"), cost: num("cost") };
  }
  return out;
}

function rateLimitFromFlags(f: FlagValues): RateLimit {
  const perSecond = numberFlag(f, "rate-limit-per-second", 0);
  const burst = intFlag(f, "rate-limit-burst", Math.max(1, Math.ceil(perSecond)), 1);
  return { perSecond, burst };
}

/**
 * The API key: LLORCH_API_KEY, else `api-key` in the command's config section.
 * There is deliberately no --api-key flag: a command line is visible to every
 * user of the machine.
 */
export function apiKeyFrom(f: FlagValues): string | undefined {
  const fromEnv = process.env[API_KEY_ENV];
  if (fromEnv) return fromEnv;
  const fromFile = f["api-key"];
  return typeof fromFile === "string" && fromFile !== "" ? fromFile : undefined;
}
