import { apiKeyFrom, ownKeyFrom } from "../contracts/runtime/api-key.js";
import { securityFlags, type SecuritySettings } from "../contracts/runtime/security-flags.js";
import { applyFlags, flagHelp, helpLine, type FlagTable, type FlagValues } from "../contracts/runtime/flag-table.js";
import { flagBoolean, flagChoice, flagInteger, flagList, flagNumber, flagText } from "../contracts/runtime/flag-values.js";
import { DEFAULT_SHUTDOWN_GRACE_MS, shutdownGraceFlag } from "../contracts/runtime/shutdown-grace.js";
import { logFormatFlag, type LogFormat } from "../contracts/runtime/log-format.js";
import { QUEUE_FULL_POLICIES } from "./scheduler/queue-policy.js";
import { DEFAULT_SCHEDULER_OPTIONS, type SchedulerOptions } from "./scheduler/scheduler-options.js";
import { DEFAULT_SESSION_OPTIONS, type BudgetLimits, type SessionOptions } from "./sessions/session-store.js";

export interface CoreConfig {
  host: string;
  port: number;
  /** Prometheus endpoint; none when undefined. */
  metricsHost?: string;
  metricsPort?: number;
  scheduler: SchedulerOptions;
  sessions: SessionOptions;
  /** LLORCH_API_KEY: a key holding every role, accepted on every llama_orch service (reflection and health stay open). */
  apiKey?: string;
  /** What core presents to its sidecars (a worker key): LLORCH_KEY, else the API key. Never logged. */
  ownKey?: string;
  /** The keys file and TLS files. */
  security: SecuritySettings;
  /** Where the model catalog and the artifacts live (created if missing). */
  catalogRoot: string;
  artifactsRoot: string;
  /** Where admitted tasks are journaled, so a core that was killed queues them again when it restarts. One core per directory. */
  journalRoot: string;
  /**
   * The model cache this host's sidecars download into (their --model-cache),
   * which catalog verify reads; default the sidecars' own default.
   */
  modelCacheDir?: string;
  /** The only directories (with the model cache) whose files catalog verify reads; a source elsewhere is refused. */
  modelRoots: string[];
  /** Largest artifact a client may store (canonical JSON bytes); transcripts may be larger. */
  artifactMaxBytes: number;
  /** Load models no pool serves into an idle pool on demand. */
  autoFetch: boolean;
  /** Store every finished stream's SSE transcript as a trace artifact (costs core CPU and disk per task). */
  transcripts: boolean;
  /** Transcripts older than this are deleted, a whole segment of the transcript log at a time (0: kept for ever). */
  transcriptRetentionMs: number;
  /** On SIGTERM, how long running tasks may finish before the rest end with SHUTTING_DOWN. */
  shutdownGraceMs: number;
  /** Undefined: LLORCH_LOG_FORMAT, else by whether stdout is a terminal. */
  logFormat?: LogFormat;
}

export const DEFAULT_CORE_CONFIG: CoreConfig = {
  host: "127.0.0.1",
  port: 50051,
  scheduler: DEFAULT_SCHEDULER_OPTIONS,
  sessions: DEFAULT_SESSION_OPTIONS,
  catalogRoot: ".llorch/catalog",
  artifactsRoot: ".llorch/artifacts",
  journalRoot: ".llorch/journal",
  modelRoots: [],
  artifactMaxBytes: 1024 * 1024,
  autoFetch: false,
  transcripts: true,
  transcriptRetentionMs: 7 * 24 * 3600 * 1000,
  security: { tls: {} },
  shutdownGraceMs: DEFAULT_SHUTDOWN_GRACE_MS,
};

const S = DEFAULT_SCHEDULER_OPTIONS;

/** Core's flags, in the order `llorch core --help` lists them. */
export const CORE_FLAGS: FlagTable<CoreConfig> = [
  { name: "host", arg: "H", help: `listen address (default ${DEFAULT_CORE_CONFIG.host})`, apply: (c, v, f) => (c.host = flagText(f, v)) },
  {
    name: "port",
    arg: "N",
    help: `gRPC port, 0 = ephemeral (default ${DEFAULT_CORE_CONFIG.port})`,
    apply: (c, v, f) => (c.port = flagInteger(f, v, 0, 65_535)),
  },
  {
    name: "metrics-host",
    arg: "H",
    help: "Prometheus listen address (default: --host)",
    apply: (c, v, f) => (c.metricsHost = flagText(f, v)),
  },
  {
    name: "metrics-port",
    arg: "N",
    help: "serve GET /metrics on this port (default: off)",
    apply: (c, v, f) => (c.metricsPort = flagInteger(f, v, 0, 65_535)),
  },
  {
    name: "queue-capacity",
    arg: "N",
    help: `bound of each pool's queue (default ${S.queueCapacity})`,
    apply: (c, v, f) => (c.scheduler.queueCapacity = flagInteger(f, v, 1, 1_000_000)),
  },
  {
    name: "queue-policy",
    arg: "P",
    help: `when a queue is full: ${QUEUE_FULL_POLICIES.join(" | ")} (default ${S.queuePolicy})`,
    apply: (c, v, f) => (c.scheduler.queuePolicy = flagChoice(f, v, QUEUE_FULL_POLICIES)),
  },
  {
    name: "task-retention-ms",
    arg: "N",
    help: `how long finished tasks stay streamable (default ${S.taskRetentionMs})`,
    apply: (c, v, f) => (c.scheduler.taskRetentionMs = flagInteger(f, v, 0)),
  },
  {
    name: "max-retained-tasks",
    arg: "N",
    help: `tasks kept in memory at most; the oldest finished go first (default ${S.maxRetainedTasks})`,
    apply: (c, v, f) => (c.scheduler.maxRetainedTasks = flagInteger(f, v, 1)),
  },
  {
    name: "wall-timeout-ms",
    arg: "N",
    help: `watchdog: longest run from dispatch, 0 = none (default ${S.wallTimeoutMs})`,
    apply: (c, v, f) => (c.scheduler.wallTimeoutMs = flagInteger(f, v, 0)),
  },
  {
    name: "idle-timeout-ms",
    arg: "N",
    help: `watchdog: longest gap between tokens, 0 = none (default ${S.idleTimeoutMs})`,
    apply: (c, v, f) => (c.scheduler.idleTimeoutMs = flagInteger(f, v, 0)),
  },
  {
    name: "metrics-interval-ms",
    arg: "N",
    help: `cadence of metrics frames on running streams, 0 = none (default ${S.metricsIntervalMs})`,
    apply: (c, v, f) => (c.scheduler.metricsIntervalMs = flagInteger(f, v, 0)),
  },
  {
    name: "disconnect-grace-ms",
    arg: "N",
    help: `cancel a task this long after its last stream closed, 0 = at once (default ${S.disconnectGraceMs})`,
    apply: (c, v, f) => (c.scheduler.disconnectGraceMs = flagInteger(f, v, 0)),
  },
  shutdownGraceFlag("running tasks"),
  {
    name: "session-ttl-ms",
    arg: "N",
    help: `idle lifetime of a session (default ${DEFAULT_SESSION_OPTIONS.ttlMs})`,
    apply: (c, v, f) => (c.sessions.ttlMs = flagInteger(f, v, 1)),
  },
  {
    name: "session-max-turns",
    arg: "N",
    help: `tasks per session (default ${DEFAULT_SESSION_OPTIONS.maxTurns})`,
    apply: (c, v, f) => (c.sessions.maxTurns = flagInteger(f, v, 1)),
  },
  {
    name: "session-token-budget",
    arg: "N",
    usage: "--session-token-budget N, --session-time-budget-ms N, --session-cost-budget X",
    help: "\ndefault per-session budgets (default: unlimited); per-session\noverrides go in the config file under core.session-budgets",
    apply: (c, v, f) => (c.sessions.defaultBudgets.tokens = flagInteger(f, v, 0)),
  },
  { name: "session-time-budget-ms", arg: "N", apply: (c, v, f) => (c.sessions.defaultBudgets.timeMs = flagInteger(f, v, 0)) },
  { name: "session-cost-budget", arg: "X", apply: (c, v, f) => (c.sessions.defaultBudgets.cost = flagNumber(f, v)) },
  {
    name: "cost-per-1k-tokens",
    arg: "X",
    help: `cost units charged per 1000 tokens in and out (default ${DEFAULT_SESSION_OPTIONS.costPerThousandTokens})`,
    apply: (c, v, f) => (c.sessions.costPerThousandTokens = flagNumber(f, v)),
  },
  {
    name: "catalog-root",
    arg: "DIR",
    help: `durable model catalog (default ${DEFAULT_CORE_CONFIG.catalogRoot})`,
    apply: (c, v, f) => (c.catalogRoot = flagText(f, v)),
  },
  {
    name: "artifacts-root",
    arg: "DIR",
    help: `durable artifacts, stream transcripts included (default ${DEFAULT_CORE_CONFIG.artifactsRoot})`,
    apply: (c, v, f) => (c.artifactsRoot = flagText(f, v)),
  },
  {
    name: "journal-root",
    arg: "DIR",
    help: `journal of admitted tasks: a restarted core queues the unfinished ones again, one core\nper directory (default ${DEFAULT_CORE_CONFIG.journalRoot})`,
    apply: (c, v, f) => (c.journalRoot = flagText(f, v)),
  },
  {
    name: "reclaim-grace-ms",
    arg: "N",
    help: `after a restart, how long a task that was running waits for its sidecar to hand it back\n(default ${S.reclaimGraceMs})`,
    apply: (c, v, f) => (c.scheduler.reclaimGraceMs = flagInteger(f, v, 0)),
  },
  {
    name: "model-cache",
    arg: "DIR",
    help: "the model cache the sidecars of this host download into, where catalog verify finds hf: and\nhttps:// models (default $LLORCH_MODEL_CACHE, else ~/.cache/llorch/models, as the sidecars')",
    apply: (c, v, f) => (c.modelCacheDir = flagText(f, v)),
  },
  {
    name: "model-roots",
    arg: "DIR,...",
    help: "directories whose model files catalog verify may read, besides the model cache (default: none);\na source_url elsewhere is refused",
    apply: (c, v, f) => (c.modelRoots = flagList(f, v)),
  },
  {
    name: "artifact-max-bytes",
    arg: "N",
    help: `largest artifact a client may store (default ${DEFAULT_CORE_CONFIG.artifactMaxBytes})`,
    apply: (c, v, f) => (c.artifactMaxBytes = flagInteger(f, v, 1)),
  },
  {
    name: "transcripts",
    arg: "on|off",
    help: "keep every finished stream's SSE transcript as a trace artifact (default on)",
    apply: (c, v, f) => (c.transcripts = flagChoice(f, v, ["on", "off"] as const) === "on"),
  },
  {
    name: "transcript-retention-ms",
    arg: "MS",
    help: `how long transcripts are kept; a whole segment of the transcript log goes at a time, so up\nto its newest record's age (default ${DEFAULT_CORE_CONFIG.transcriptRetentionMs}, a week; 0 keeps them)`,
    apply: (c, v, f) => (c.transcriptRetentionMs = flagInteger(f, v, 0)),
  },
  {
    name: "auto-fetch",
    arg: "",
    help: "load a model no pool serves into an idle pool of its engine on demand (default off:\nsuch tasks get an advisory POOL_UNAVAILABLE)",
    apply: (c, v, f) => (c.autoFetch = flagBoolean(f, v)),
  },
  ...securityFlags<CoreConfig>((c) => c.security, "the edge and the sidecars"),
  logFormatFlag(),
];

const HELP_WIDTH = 22;

export const coreHelp = [
  "llorch core — the scheduler (gRPC: TaskService, RegistryService, reflection, health)",
  "",
  'Flags (each also settable under "core:" in --config):',
  flagHelp(CORE_FLAGS, HELP_WIDTH),
  "",
  "Every llama_orch service call must present a key (reflection and health stay open): one of --keys-file",
  "(client: tasks, sessions, reads; admin: drain, reload, catalog and artifact writes; worker: registration),",
  'or LLORCH_API_KEY (or api-key under "core:" in --config), which holds every role. Core presents LLORCH_KEY',
  "(a worker key; default LLORCH_API_KEY) to its sidecars. Without a key core refuses to listen beyond loopback.",
  helpLine("--config FILE", "YAML config file", HELP_WIDTH),
  "",
].join("\n");

/** Core's config from its flags and, for what is no flag (session-budgets), its config file section. */
export function coreConfigFromFlags(flags: FlagValues, section: Record<string, unknown> = {}): CoreConfig {
  const perSessionBudgets = sessionBudgetsFromConfig(section["session-budgets"]);
  const config: CoreConfig = {
    ...DEFAULT_CORE_CONFIG,
    scheduler: { ...DEFAULT_SCHEDULER_OPTIONS },
    sessions: { ...DEFAULT_SESSION_OPTIONS, defaultBudgets: {}, perSessionBudgets },
    security: { tls: {} },
  };
  applyFlags(CORE_FLAGS, flags, config);
  config.apiKey = apiKeyFrom(flags);
  config.ownKey = ownKeyFrom(flags);
  return config;
}

/**
 * `session-budgets:` in the core section: per-session overrides of the
 * default budgets, `{<session id>: {tokens, time-ms, cost}}`.
 */
function sessionBudgetsFromConfig(raw: unknown): Record<string, BudgetLimits> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== "object" || Array.isArray(raw))
    throw new Error("config: core.session-budgets must be a mapping of session id to budgets");
  const out: Record<string, BudgetLimits> = {};
  for (const [id, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`config: core.session-budgets.${id} must be a mapping`);
    const b = v as Record<string, unknown>;
    const num = (k: string): number | undefined => {
      if (b[k] === undefined) return undefined;
      if (typeof b[k] !== "number" || !Number.isFinite(b[k]) || b[k] < 0)
        throw new Error(`config: core.session-budgets.${id}.${k} must be a non-negative number`);
      return b[k];
    };
    out[id.toLowerCase()] = { tokens: num("tokens"), timeMs: num("time-ms"), cost: num("cost") };
  }
  return out;
}
