import { apiKeyFrom, ownKeyFrom } from "../contracts/runtime/api-key.js";
import type { TlsFiles } from "../contracts/runtime/tls.js";
import { applyFlags, flagHelp, helpLine, type FlagTable, type FlagValues } from "../contracts/runtime/flag-table.js";
import { flagBoolean, flagInteger, flagList, flagNumber, flagText } from "../contracts/runtime/flag-values.js";
import { DEFAULT_SHUTDOWN_GRACE_MS, shutdownGraceFlag } from "../contracts/runtime/shutdown-grace.js";
import { logFormatFlag, type LogFormat } from "../contracts/runtime/log-format.js";
import { corsOrigin } from "./middleware/cors.js";
import type { RateLimit } from "./middleware/rate-limit.js";
import { modelNamesFromConfig, type ModelName } from "./compat/model-names.js";

export interface EdgeConfig {
  host: string;
  port: number;
  /** host:port of core's gRPC server. */
  coreAddress: string;
  /** Largest accepted request body. */
  bodyLimitBytes: number;
  /** Deepest nesting of arrays and objects a JSON body may have (the body itself is level 1). */
  jsonMaxDepth: number;
  /** A request whose headers have not all arrived this long after it began is answered 408 and closed. */
  headersTimeoutMs: number;
  /** A request (headers and body) not complete this long after it began is answered 408 and closed (0 = never); responses, SSE streams included, are not bound by it. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** A comment line on an SSE stream idle this long keeps proxies from closing it (0 = never). */
  sseHeartbeatMs: number;
  /** How long an open stream is held while core is unreachable before it ends with CORE_UNAVAILABLE. */
  coreLossGraceMs: number;
  /** Per-caller limit on task submissions. */
  rateLimit: RateLimit;
  /** LLORCH_API_KEY: a key holding every role, accepted from clients. */
  apiKey?: string;
  /** What the edge presents to core for its own calls and for loopback callers without a key: LLORCH_KEY, else the API key. */
  ownKey?: string;
  /** Named keys with roles (--keys-file), reloaded on SIGHUP. */
  keysFile?: string;
  /** X-Forwarded-For (its last hop) names the client: the edge sits behind a proxy it trusts. */
  trustProxy: boolean;
  /** Serve HTTPS with this certificate and key. */
  tls: Pick<TlsFiles, "cert" | "key">;
  /** Dial core over TLS verified against `ca`, presenting `cert`/`key` when core requires a client certificate. */
  coreTls: TlsFiles;
  /** Loopback clients may omit the key. */
  authOptionalOnLoopback: boolean;
  /** Origins of the web pages that may call the API ("*": any, only without an API key); empty: no CORS headers. */
  corsOrigins: string[];
  /** The compatible APIs' deadline when a request sends no X-Deadline-Ms. */
  defaultDeadlineMs: number;
  /** The compatible APIs' max_tokens when a request sets none (at most the model's ctx). */
  defaultMaxTokens: number;
  /** Friendly model names for the compatible APIs (the config file's `models:`). */
  models: Record<string, ModelName>;
  /** On SIGTERM, how long open streams and requests may finish before the rest end with SHUTTING_DOWN. */
  shutdownGraceMs: number;
  /** Undefined: LLORCH_LOG_FORMAT, else by whether stdout is a terminal. */
  logFormat?: LogFormat;
}

export const DEFAULT_EDGE_CONFIG: EdgeConfig = {
  host: "127.0.0.1",
  port: 8080,
  coreAddress: "127.0.0.1:50051",
  bodyLimitBytes: 1024 * 1024,
  jsonMaxDepth: 64,
  headersTimeoutMs: 10_000,
  // A 1 MiB body (the default limit) at a slow 50 KB/s still arrives in time; a stalled one frees its connection.
  requestTimeoutMs: 30_000,
  // Above the 60 s idle timeout of common load balancers, so they close first and never reuse a connection the edge just closed.
  keepAliveTimeoutMs: 65_000,
  sseHeartbeatMs: 15_000,
  coreLossGraceMs: 15_000,
  rateLimit: { perSecond: 0, burst: 1 },
  authOptionalOnLoopback: false,
  trustProxy: false,
  tls: {},
  coreTls: {},
  corsOrigins: [],
  // The official SDKs wait up to 10 minutes for a response by default; a deadline shorter than that would refuse work they wait for.
  defaultDeadlineMs: 600_000,
  defaultMaxTokens: 1024,
  models: {},
  shutdownGraceMs: DEFAULT_SHUTDOWN_GRACE_MS,
};

const D = DEFAULT_EDGE_CONFIG;

/** The edge's flags, in the order `llorch edge --help` lists them. */
export const EDGE_FLAGS: FlagTable<EdgeConfig> = [
  { name: "host", arg: "H", help: `listen address (default ${D.host})`, apply: (c, v, f) => (c.host = flagText(f, v)) },
  {
    name: "port",
    arg: "N",
    help: `HTTP port, 0 = ephemeral (default ${D.port})`,
    apply: (c, v, f) => (c.port = flagInteger(f, v, 0, 65_535)),
  },
  {
    name: "core",
    arg: "HOST:PORT",
    help: `core's gRPC address (default ${D.coreAddress})`,
    apply: (c, v, f) => (c.coreAddress = flagText(f, v)),
  },
  {
    name: "body-limit-bytes",
    arg: "N",
    help: `largest request body accepted (default ${D.bodyLimitBytes})`,
    apply: (c, v, f) => (c.bodyLimitBytes = flagInteger(f, v, 1)),
  },
  {
    name: "json-max-depth",
    arg: "N",
    help: `deepest nesting of arrays and objects in a JSON body, 1-1000 (default ${D.jsonMaxDepth})`,
    apply: (c, v, f) => (c.jsonMaxDepth = flagInteger(f, v, 1, 1_000)),
  },
  {
    name: "headers-timeout-ms",
    arg: "N",
    help: `a request's headers must arrive within this, else 408 (default ${D.headersTimeoutMs})`,
    apply: (c, v, f) => (c.headersTimeoutMs = flagInteger(f, v, 1)),
  },
  {
    name: "request-timeout-ms",
    arg: "N",
    help: `a whole request (headers and body) must arrive within this, else 408;
responses and SSE streams are not bound by it; 0 = no limit (default ${D.requestTimeoutMs})`,
    apply: (c, v, f) => (c.requestTimeoutMs = flagInteger(f, v, 0)),
  },
  {
    name: "keep-alive-timeout-ms",
    arg: "N",
    help: `close an idle keep-alive connection after this (default ${D.keepAliveTimeoutMs})`,
    apply: (c, v, f) => (c.keepAliveTimeoutMs = flagInteger(f, v, 1)),
  },
  {
    name: "sse-heartbeat-ms",
    arg: "N",
    help: `comment line on idle SSE streams, 0 = off (default ${D.sseHeartbeatMs})`,
    apply: (c, v, f) => (c.sseHeartbeatMs = flagInteger(f, v, 0)),
  },
  shutdownGraceFlag("open streams and requests"),
  {
    name: "core-loss-grace-ms",
    arg: "N",
    help: `how long an open stream waits for an unreachable core (then it resumes where it was) before\nit ends with a retriable CORE_UNAVAILABLE error frame (default ${D.coreLossGraceMs})`,
    apply: (c, v, f) => (c.coreLossGraceMs = flagInteger(f, v, 0)),
  },
  {
    name: "rate-limit-per-second",
    arg: "X",
    help: `/v1 requests per second per caller (API key, else address), 0 = off (default ${D.rateLimit.perSecond})`,
    apply: (c, v, f) => (c.rateLimit.perSecond = flagNumber(f, v)),
  },
  {
    name: "rate-limit-burst",
    arg: "N",
    help: "submissions a caller may make at once (default: the per-second rate, at least 1)",
    apply: (c, v, f) => (c.rateLimit.burst = flagInteger(f, v, 1)),
  },
  {
    name: "cors-origin",
    arg: "LIST",
    help: 'origins of web pages that may call the API, comma-separated\n(e.g. https://app.example.com); "*" for any, only without an API key (default none)',
    apply: (c, v, f) => (c.corsOrigins = flagList(f, v).map((o) => corsOrigin(f, o))),
  },
  {
    name: "auth-optional",
    arg: "",
    help: "loopback clients may omit the API key (identity=localhost)",
    apply: (c, v, f) => (c.authOptionalOnLoopback = flagBoolean(f, v)),
  },
  {
    name: "keys-file",
    arg: "FILE",
    help: "named keys with roles (client, admin, worker) as sha256 hashes, YAML; reloaded on\nSIGHUP (see llorch key); LLORCH_API_KEY adds one key holding every role",
    apply: (c, v, f) => (c.keysFile = flagText(f, v)),
  },
  {
    name: "trust-proxy",
    arg: "",
    help: "behind a proxy you run: the client is the last X-Forwarded-For hop (rate limits,\nlogs, --auth-optional), not the proxy's address",
    apply: (c, v, f) => (c.trustProxy = flagBoolean(f, v)),
  },
  {
    name: "tls-cert",
    arg: "FILE",
    usage: "--tls-cert FILE, --tls-key FILE",
    help: "\nserve HTTPS with this certificate (PEM) and key",
    apply: (c, v, f) => (c.tls.cert = flagText(f, v)),
  },
  { name: "tls-key", arg: "FILE", apply: (c, v, f) => (c.tls.key = flagText(f, v)) },
  {
    name: "core-tls-ca",
    arg: "FILE",
    help: "CA (PEM) of core's certificate: dial core over TLS, verified against it",
    apply: (c, v, f) => (c.coreTls.ca = flagText(f, v)),
  },
  {
    name: "core-tls-cert",
    arg: "FILE",
    usage: "--core-tls-cert FILE, --core-tls-key FILE",
    help: "\nthe client certificate (PEM) and key presented to a core that requires one (mutual TLS)",
    apply: (c, v, f) => (c.coreTls.cert = flagText(f, v)),
  },
  { name: "core-tls-key", arg: "FILE", apply: (c, v, f) => (c.coreTls.key = flagText(f, v)) },
  {
    name: "default-deadline-ms",
    arg: "N",
    help: `OpenAI/Anthropic-compatible requests without X-Deadline-Ms get this deadline (default ${D.defaultDeadlineMs})`,
    apply: (c, v, f) => (c.defaultDeadlineMs = flagInteger(f, v, 1)),
  },
  {
    name: "default-max-tokens",
    arg: "N",
    help: `OpenAI-compatible requests without max_tokens generate at most this many, capped at ctx (default ${D.defaultMaxTokens})`,
    apply: (c, v, f) => (c.defaultMaxTokens = flagInteger(f, v, 1)),
  },
  logFormatFlag(),
];

const HELP_WIDTH = 22;

export const edgeHelp = [
  "llorch edge — the public HTTP API (OpenAPI at /openapi.json, SSE streams)",
  "",
  'Flags (each also settable under "edge:" in --config):',
  flagHelp(EDGE_FLAGS, HELP_WIDTH),
  "",
  "Clients send a key as Authorization: Bearer <key>: one of --keys-file (a client key; control-plane writes",
  'need an admin key), or LLORCH_API_KEY (or api-key under "edge:" in --config), which holds every role.',
  "The edge forwards the caller's key to core and presents LLORCH_KEY (default LLORCH_API_KEY) for its own",
  "calls. Without a key the edge refuses to listen beyond loopback.",
  helpLine("--config FILE", "YAML config file", HELP_WIDTH),
  "",
  'Model names for the OpenAI/Anthropic-compatible APIs go under "edge: models:" in --config:',
  "  qwen2.5-0.5b: {engine: llamacpp, model_ref: hf:Qwen/..., ctx: 4096, pool: gpu}",
  "(a model_ref a ready replica serves is a name as well).",
  "",
].join("\n");

/** The edge's config from its flags and, for what is no flag (models), its config file section. */
export function edgeConfigFromFlags(flags: FlagValues, section: Record<string, unknown> = {}): EdgeConfig {
  const config: EdgeConfig = {
    ...DEFAULT_EDGE_CONFIG,
    rateLimit: { ...DEFAULT_EDGE_CONFIG.rateLimit },
    tls: {},
    coreTls: {},
    corsOrigins: [],
    models: modelNamesFromConfig(section["models"]),
  };
  applyFlags(EDGE_FLAGS, flags, config);
  // A burst below the sustained rate would cap it: by default a caller may spend one second's worth at once.
  if (flags["rate-limit-burst"] === undefined) config.rateLimit.burst = Math.max(1, Math.ceil(config.rateLimit.perSecond));
  // Node refuses a server whose headers may take longer than the whole request.
  if (config.requestTimeoutMs > 0 && config.headersTimeoutMs > config.requestTimeoutMs) {
    throw new Error(`--headers-timeout-ms (${config.headersTimeoutMs}) must not exceed --request-timeout-ms (${config.requestTimeoutMs})`);
  }
  config.apiKey = apiKeyFrom(flags);
  config.ownKey = ownKeyFrom(flags);
  return config;
}
