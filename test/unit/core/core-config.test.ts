import test from "ava";
import { flagNames } from "../../../contracts/runtime/flag-table.js";
import { CORE_FLAGS, coreConfigFromFlags, coreHelp, DEFAULT_CORE_CONFIG } from "../../../core/core-config.js";
import { DEFAULT_SCHEDULER_OPTIONS } from "../../../core/scheduler/scheduler-options.js";

test("no flags give the defaults", (t) => {
  const config = coreConfigFromFlags({});
  t.like(config, {
    host: DEFAULT_CORE_CONFIG.host,
    port: DEFAULT_CORE_CONFIG.port,
    catalogRoot: ".llorch/catalog",
    autoFetch: false,
    transcripts: true,
    metricsPort: undefined,
  });
  t.deepEqual(config.scheduler, DEFAULT_SCHEDULER_OPTIONS);
  t.deepEqual(config.sessions.defaultBudgets, {});
});

test("every flag maps onto the config", (t) => {
  const config = coreConfigFromFlags({
    host: "0.0.0.0",
    port: "7000",
    "metrics-host": "::",
    "metrics-port": "9100",
    "queue-capacity": "3",
    "queue-policy": "drop-lru",
    "task-retention-ms": "0",
    "wall-timeout-ms": "5",
    "idle-timeout-ms": "6",
    "max-retained-tasks": "9",
    "metrics-interval-ms": "7",
    "disconnect-grace-ms": "8",
    "shutdown-grace-ms": "11",
    "session-ttl-ms": "100",
    "session-max-turns": "2",
    "session-token-budget": "50",
    "session-time-budget-ms": "1000",
    "session-cost-budget": "2.5",
    "cost-per-1k-tokens": "0.25",
    "catalog-root": "/c",
    "artifacts-root": "/a",
    "journal-root": "/j",
    "reclaim-grace-ms": "9",
    "model-cache": "/m",
    "model-roots": "/models, /srv/gguf",
    "artifact-max-bytes": "10",
    transcripts: "off",
    "auto-fetch": true,
    "keys-file": "/k.yaml",
    "tls-cert": "/c.pem",
    "tls-key": "/c.key",
    "tls-ca": "/ca.pem",
    "log-format": "pretty",
  });
  t.like(config, {
    host: "0.0.0.0",
    port: 7000,
    metricsHost: "::",
    metricsPort: 9100,
    scheduler: {
      queueCapacity: 3,
      queuePolicy: "drop-lru",
      taskRetentionMs: 0,
      maxRetainedTasks: 9,
      wallTimeoutMs: 5,
      idleTimeoutMs: 6,
      metricsIntervalMs: 7,
      disconnectGraceMs: 8,
      reclaimGraceMs: 9,
    },
    sessions: { ttlMs: 100, maxTurns: 2, defaultBudgets: { tokens: 50, timeMs: 1000, cost: 2.5 }, costPerThousandTokens: 0.25 },
    catalogRoot: "/c",
    artifactsRoot: "/a",
    journalRoot: "/j",
    modelCacheDir: "/m",
    modelRoots: ["/models", "/srv/gguf"],
    artifactMaxBytes: 10,
    transcripts: false,
    autoFetch: true,
    shutdownGraceMs: 11,
    logFormat: "pretty",
    security: { keysFile: "/k.yaml", tls: { cert: "/c.pem", key: "/c.key", ca: "/ca.pem" } },
  });
  t.is(flagNames(CORE_FLAGS).length, 34);
});

test("flags do not change the shared defaults", (t) => {
  coreConfigFromFlags({ "queue-capacity": "3", "session-token-budget": "5" });
  t.is(DEFAULT_SCHEDULER_OPTIONS.queueCapacity, 256);
  t.deepEqual(coreConfigFromFlags({}).sessions.defaultBudgets, {});
});

test("per-session budgets come from the config section, by lower-cased session id", (t) => {
  const config = coreConfigFromFlags({}, { "session-budgets": { ABC: { tokens: 5, "time-ms": 100, cost: 1.5 } } });
  t.deepEqual(config.sessions.perSessionBudgets, { abc: { tokens: 5, timeMs: 100, cost: 1.5 } });
  t.throws(() => coreConfigFromFlags({}, { "session-budgets": [] }), { message: /core.session-budgets must be a mapping/ });
  t.throws(() => coreConfigFromFlags({}, { "session-budgets": { a: { tokens: -1 } } }), {
    message: /core.session-budgets.a.tokens must be a non-negative number/,
  });
});

for (const [flag, value, message] of [
  ["queue-capacity", "0", /--queue-capacity must be an integer from 1 to 1000000/],
  ["queue-policy", "fifo", /--queue-policy must be one of reject, drop-lru, shed-low-priority/],
  ["transcripts", "maybe", /--transcripts must be one of on, off/],
  ["session-ttl-ms", "0", /--session-ttl-ms must be an integer of at least 1/],
  ["cost-per-1k-tokens", "-1", /--cost-per-1k-tokens must be a non-negative number/],
  ["auto-fetch", "maybe", /--auto-fetch must be true or false/],
  ["catalog-root", "", /--catalog-root needs a value/],
] as const) {
  test(`core --${flag} ${value} is refused with a message naming the flag`, (t) => {
    t.throws(() => coreConfigFromFlags({ [flag]: value }), { message });
  });
}

test("the help text lists every flag and where the API key comes from", (t) => {
  for (const name of flagNames(CORE_FLAGS)) t.true(coreHelp.includes(`--${name} `) || coreHelp.includes(`--${name}\n`), name);
  t.regex(
    coreHelp,
    /^ {2}--session-token-budget N, --session-time-budget-ms N, --session-cost-budget X\n {25}default per-session budgets/m,
  );
  t.regex(coreHelp, /LLORCH_API_KEY/);
  t.regex(coreHelp, /^ {2}--config FILE {10}YAML config file\n$/m);
});
