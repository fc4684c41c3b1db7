import { engines, workloads } from "../../contracts/enums.js";
import { Engine, Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { workerErrorKinds } from "../engine-adapter.js";
import { applyFlags, flagHelp, flagNames, type FlagTable, type FlagValues } from "../../contracts/runtime/flag-table.js";
import { flagBoolean, flagChoice, flagInteger, flagList, flagNumber, flagText } from "../../contracts/runtime/flag-values.js";
import { shutdownGraceFlag } from "../../contracts/runtime/shutdown-grace.js";
import { securityFlags, type SecuritySettings } from "../../contracts/runtime/security-flags.js";
import { logFormatFlag, type LogFormat } from "../../contracts/runtime/log-format.js";
import { MOCK_DEFAULTS } from "../mock/mock-engine.js";
import { GPU_CHOICES, type GpuChoice } from "../llamacpp-embedded/llama-runtime.js";

/** The mock engine's knobs; every one also has a flag. */
export interface MockConfig {
  /** 0 = as fast as possible. */
  tokensPerSecond?: number;
  slots?: number;
  ctxMax?: number;
  /** Fail every task after this many tokens (a prompt directive can override per task). */
  failAfter?: number;
  /** Public WorkerErrorKind name for failAfter, e.g. "engine_error" (the default), "timeout", "reset". */
  failKind?: string;
  /** Stop producing after this many tokens until the task is cancelled. */
  hangAfter?: number;
  slowStartMs?: number;
  /** Simulated model load: live but not ready for this long after start. */
  loadMs?: number;
  /** Simulated LoadModel time: not ready for this long while switching models (default 200). */
  reloadMs?: number;
  /** Model refs LoadModel fails to load (after reloadMs); the previous model keeps serving. */
  rejectModels?: string[];
}

/** The embedded llama.cpp engine's knobs (adapter llamacpp-embedded). */
export interface EmbeddedConfig {
  /** llama.cpp threads per context; default half the available cores, at least 1. */
  threads?: number;
  gpu?: GpuChoice;
  gpuLayers?: "auto" | "max" | number;
}

export interface WorkerConfig {
  /** Bind address of the gRPC server; default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks an ephemeral port. */
  port?: number;
  /** host:port core should dial; default the bound address (the machine's hostname when bound to a wildcard). */
  advertiseAddress?: string;
  /** Core's gRPC address; without it the sidecar serves but does not register. */
  coreAddress?: string;
  /** The key presented to core on registration (a worker key: LLORCH_KEY, else LLORCH_API_KEY); never logged. */
  coreApiKey?: string;
  /** LLORCH_API_KEY: accepted on WorkerService (it holds every role). */
  apiKey?: string;
  /** --keys-file (the worker keys WorkerService accepts: core's) and the TLS files. */
  security?: SecuritySettings;
  /** Default "default". */
  poolId?: string;
  /** Default `${poolId}-r${port}` with the bound port. */
  replicaId?: string;
  /** Public engine name the sidecar serves for: llamacpp (default), vllm, tgi, triton, openai. */
  engine?: string;
  /** Default "mock:tiny". */
  modelRef?: string;
  /** Default true (the mock answers for any model). */
  servesAnyModel?: boolean;
  /** Default "cpu". */
  deviceMask?: string;
  /** How often the GPUs (nvidia-smi, rocm-smi) are read; default 5000. */
  gpuPollMs?: number;
  /** Default 127.0.0.1. */
  metricsHost?: string;
  /** No metrics server unless set; 0 picks an ephemeral port. */
  metricsPort?: number;
  mock?: MockConfig;
  embedded?: EmbeddedConfig;
  /**
   * Which adapter drives the engine: "mock", "llamacpp-embedded" (llama.cpp in this process), or the HTTP adapter of
   * an engine server (llamacpp, vllm, tgi, triton, openai). Default: the engine's own adapter when engineUrl is set,
   * else llamacpp-embedded when the model is a local .gguf file, else mock.
   */
  adapter?: string;
  /** The engine's HTTP base URL, e.g. http://127.0.0.1:8081. */
  engineUrl?: string;
  /** The model name the engine expects in requests (vLLM/OpenAI `model`, Triton model name). */
  engineModel?: string;
  /** Engine API key (OpenAI-compatible servers); from LLORCH_ENGINE_API_KEY, never a flag. */
  engineApiKey?: string;
  /** Start and supervise the engine with this command line (spawned without a shell). */
  engineCmd?: string;
  /**
   * What the engine server was started to serve (llamacpp, vllm adapters): the servers cannot be asked, so the
   * operator says it. Default completion.
   */
  workloads?: Workload[];
  /** Where hf: and https: models are downloaded to; default the provisioner's defaultModelCacheDir (LLORCH_MODEL_CACHE, ~/.cache/llorch/models). */
  modelCacheDir?: string;
  /** Unload the model after this long without a generation (the engine stopped, the embedded model freed); the next one loads it. Default off. */
  modelTtlMs?: number;
  /** On SIGTERM, how long running generations may finish before they end (a retriable RESET). */
  shutdownGraceMs?: number;
  /** A generation core's call lost (core restarted) runs on, held for core to resume: up to this many tokens and results (default 10000)... */
  holdMaxEvents?: number;
  /** ...and for this long (default 60000). */
  holdMs?: number;
  /** Undefined: LLORCH_LOG_FORMAT, else by whether stdout is a terminal. */
  logFormat?: LogFormat;
}

export const WORKER_DEFAULTS = {
  host: "127.0.0.1",
  port: 0,
  poolId: "default",
  engine: "llamacpp",
  metricsHost: "127.0.0.1",
} as const;

/** The embedded engine's context per slot when --ctx-max is not given (capped by the model's own). */
export const EMBEDDED_DEFAULT_CTX = 4096;

const mock = (config: WorkerConfig): MockConfig => (config.mock ??= {});
const embedded = (config: WorkerConfig): EmbeddedConfig => (config.embedded ??= {});

/** The one table of worker flags: parsing and `--help` both come from it. */
export const WORKER_FLAGS: FlagTable<WorkerConfig> = [
  {
    name: "host",
    arg: "<addr>",
    help: `gRPC bind address (default ${WORKER_DEFAULTS.host})`,
    apply: (c, v, f) => (c.host = flagText(f, v)),
  },
  {
    name: "port",
    arg: "<n>",
    help: "gRPC port; 0 picks a free one (default 0)",
    apply: (c, v, f) => (c.port = flagInteger(f, v, 0, 65_535)),
  },
  {
    name: "advertise",
    arg: "<host:port>",
    help: "address core should dial (default the bound address)",
    apply: (c, v, f) => (c.advertiseAddress = flagText(f, v)),
  },
  {
    name: "core",
    arg: "<host:port>",
    help: "core's gRPC address to register with (default: do not register)",
    apply: (c, v, f) => (c.coreAddress = flagText(f, v)),
  },
  { name: "pool", arg: "<id>", help: `pool id (default ${WORKER_DEFAULTS.poolId})`, apply: (c, v, f) => (c.poolId = flagText(f, v)) },
  { name: "replica", arg: "<id>", help: "replica id (default <pool>-r<port>)", apply: (c, v, f) => (c.replicaId = flagText(f, v)) },
  {
    name: "engine",
    arg: "<name>",
    help: `engine family served: llamacpp, vllm, tgi, triton, openai (default ${WORKER_DEFAULTS.engine})`,
    apply: (c, v, f) => (c.engine = engineName(f, flagText(f, v))),
  },
  {
    name: "adapter",
    arg: "<name>",
    help: "engine adapter: mock, llamacpp-embedded, llamacpp, vllm, tgi, triton, openai (default: the engine's when --engine-url is set, else llamacpp-embedded for a local .gguf model, else mock)",
    apply: (c, v, f) => (c.adapter = adapterName(f, flagText(f, v))),
  },
  {
    name: "engine-url",
    arg: "<url>",
    help: "the engine's HTTP base URL (real adapters)",
    apply: (c, v, f) => (c.engineUrl = flagText(f, v)),
  },
  {
    name: "engine-model",
    arg: "<name>",
    help: "model name the engine expects in requests (vLLM/OpenAI model, Triton model)",
    apply: (c, v, f) => (c.engineModel = flagText(f, v)),
  },
  {
    name: "engine-cmd",
    arg: "<command>",
    help: "start and supervise the engine with this command (restarts with backoff)",
    apply: (c, v, f) => (c.engineCmd = flagText(f, v)),
  },
  {
    name: "workloads",
    arg: "<w,...>",
    help: "what the engine server serves: completion, embedding, rerank (llamacpp, vllm; default completion)",
    apply: (c, v, f) => (c.workloads = workloadList(f, flagList(f, v))),
  },
  { name: "model", arg: "<ref>", help: `model ref (default ${MOCK_DEFAULTS.modelRef})`, apply: (c, v, f) => (c.modelRef = flagText(f, v)) },
  {
    name: "model-cache",
    arg: "<dir>",
    help: "where hf: and https: models are downloaded to (default $LLORCH_MODEL_CACHE, else ~/.cache/llorch/models;\nHF_TOKEN and HF_ENDPOINT come from the environment)",
    apply: (c, v, f) => (c.modelCacheDir = flagText(f, v)),
  },
  {
    name: "model-ttl",
    arg: "<ms>",
    help: "unload the model after this long without a task (engine stopped, memory freed); the next task loads it\nagain (embedded engine, --engine-cmd; default off)",
    apply: (c, v, f) => (c.modelTtlMs = flagInteger(f, v, 1)),
  },
  shutdownGraceFlag<WorkerConfig>("running generations"),
  {
    name: "hold-max-events",
    arg: "<n>",
    help: "when core's call breaks (core restarted), a generation runs on and is held for core to resume;\npast this many tokens and results held it is stopped (default 10000)",
    apply: (c, v, f) => (c.holdMaxEvents = flagInteger(f, v, 0)),
  },
  {
    name: "hold-ms",
    arg: "<ms>",
    help: "how long such a generation (running or ended) is held before it is given up (default 60000)",
    apply: (c, v, f) => (c.holdMs = flagInteger(f, v, 1)),
  },
  {
    name: "serves-any-model",
    arg: "<true|false>",
    help: "accept any model_ref; false serves only --model (default true)",
    apply: (c, v, f) => (c.servesAnyModel = flagBoolean(f, v)),
  },
  {
    name: "device-mask",
    arg: "<mask>",
    help: "GPUs the engine uses, by nvidia-smi index or UUID, e.g. 0,1 (default: every GPU found, or the CPU;\nthe mock reports it as given, default cpu)",
    apply: (c, v, f) => (c.deviceMask = flagText(f, v)),
  },
  {
    name: "gpu-poll-ms",
    arg: "<ms>",
    help: "how often GPU memory and utilization are read (nvidia-smi, rocm-smi) (default 5000)",
    apply: (c, v, f) => (c.gpuPollMs = flagInteger(f, v, 100, 3_600_000)),
  },
  {
    name: "metrics-host",
    arg: "<addr>",
    help: `metrics bind address (default ${WORKER_DEFAULTS.metricsHost})`,
    apply: (c, v, f) => (c.metricsHost = flagText(f, v)),
  },
  {
    name: "metrics-port",
    arg: "<n>",
    help: "serve GET /metrics on this port; 0 picks a free one (default: off)",
    apply: (c, v, f) => (c.metricsPort = flagInteger(f, v, 0, 65_535)),
  },
  {
    name: "slots",
    arg: "<n>",
    help: `concurrent generations (default ${MOCK_DEFAULTS.slots}; an engine server's own count wins)`,
    apply: (c, v, f) => (mock(c).slots = flagInteger(f, v, 1)),
  },
  {
    name: "ctx-max",
    arg: "<n>",
    help: `context limit in tokens, per slot (default ${MOCK_DEFAULTS.ctxMax}; embedded engine ${EMBEDDED_DEFAULT_CTX}, at most the model's own)`,
    apply: (c, v, f) => (mock(c).ctxMax = flagInteger(f, v, 1)),
  },
  {
    name: "threads",
    arg: "<n>",
    help: "embedded engine: llama.cpp threads per context (default half the cores, at least 1)",
    apply: (c, v, f) => (embedded(c).threads = flagInteger(f, v, 1, 1024)),
  },
  {
    name: "gpu",
    arg: "<backend>",
    help: `embedded engine: ${GPU_CHOICES.join(", ")} (default auto: the best GPU found, else CPU)`,
    apply: (c, v, f) => (embedded(c).gpu = flagChoice(f, v, GPU_CHOICES)),
  },
  {
    name: "gpu-layers",
    arg: "<n|auto|max>",
    help: "embedded engine: model layers to offload to the GPU (default auto)",
    apply: (c, v, f) => (embedded(c).gpuLayers = v === "auto" || v === "max" ? v : flagInteger(f, v, 0, 100_000)),
  },
  {
    name: "tokens-per-second",
    arg: "<n>",
    help: "mock token rate; 0 = as fast as possible (default 0)",
    apply: (c, v, f) => (mock(c).tokensPerSecond = flagNumber(f, v)),
  },
  {
    name: "fail-after",
    arg: "<n>",
    help: "mock: fail every task after n tokens",
    apply: (c, v, f) => (mock(c).failAfter = flagInteger(f, v, 0)),
  },
  {
    name: "fail-kind",
    arg: "<kind>",
    help: `mock: error kind for --fail-after (default engine_error; one of ${workerErrorKinds.names().join(", ")})`,
    apply: (c, v, f) => (mock(c).failKind = errorKindName(f, flagText(f, v))),
  },
  {
    name: "hang-after",
    arg: "<n>",
    help: "mock: stop producing after n tokens until cancelled",
    apply: (c, v, f) => (mock(c).hangAfter = flagInteger(f, v, 0)),
  },
  {
    name: "slow-start-ms",
    arg: "<ms>",
    help: "mock: delay before the first token (default 0)",
    apply: (c, v, f) => (mock(c).slowStartMs = flagInteger(f, v, 0)),
  },
  {
    name: "load-ms",
    arg: "<ms>",
    help: "mock: simulated model load time before Ready (default 0)",
    apply: (c, v, f) => (mock(c).loadMs = flagInteger(f, v, 0)),
  },
  {
    name: "reload-ms",
    arg: "<ms>",
    help: `mock: time LoadModel takes to switch models, not ready meanwhile (default ${MOCK_DEFAULTS.reloadMs})`,
    apply: (c, v, f) => (mock(c).reloadMs = flagInteger(f, v, 0)),
  },
  {
    name: "reject-models",
    arg: "<ref,...>",
    help: "mock: model refs LoadModel fails to load, comma-separated; the previous model keeps serving",
    apply: (c, v, f) => (mock(c).rejectModels = flagList(f, v)),
  },
  ...securityFlags<WorkerConfig>((c) => (c.security ??= { tls: {} }), "core"),
  logFormatFlag(),
];

/** Every flag workerConfigFromFlags understands, so a CLI can reject the rest. */
export const workerFlagNames: readonly string[] = flagNames(WORKER_FLAGS);

export const workerFlagHelp: string = [
  "Options:",
  flagHelp(WORKER_FLAGS, 30),
  "",
  "Per-task mock faults go in the prompt: [[mock fail_after=3 fail_kind=engine_error hang_after=5 slow_start_ms=200 tokens_per_second=50]]",
].join("\n");

/**
 * Maps parsed CLI flags (keys are the flag names, with or without leading
 * dashes) to a WorkerConfig. Values are checked strictly; a bad one throws an
 * Error naming the flag. Keys it does not know are left to the caller.
 */
export function workerConfigFromFlags(flags: FlagValues): WorkerConfig {
  return applyFlags(WORKER_FLAGS, flags, {});
}

export const ADAPTERS = ["mock", "llamacpp-embedded", "llamacpp", "vllm", "tgi", "triton", "openai"] as const;

function adapterName(flag: string, name: string): string {
  if (!(ADAPTERS as readonly string[]).includes(name))
    throw new Error(`${flag}: unknown adapter "${name}" (known: ${ADAPTERS.join(", ")})`);
  return name;
}

function engineName(flag: string, name: string): string {
  if (engines.parse(name) === undefined) throw new Error(`${flag}: unknown engine "${name}" (known: ${knownEngines().join(", ")})`);
  return name.toLowerCase();
}

function workloadList(flag: string, names: string[]): Workload[] {
  const parsed = names.map((name) => {
    const w = workloads.parse(name);
    if (w === undefined) throw new Error(`${flag}: unknown workload "${name}" (known: ${knownWorkloads().join(", ")})`);
    return w;
  });
  return [...new Set(parsed)];
}

function errorKindName(flag: string, name: string): string {
  if (workerErrorKinds.parse(name) === undefined)
    throw new Error(`${flag}: unknown error kind "${name}" (known: ${workerErrorKinds.names().join(", ")})`);
  return name.toLowerCase();
}

function knownWorkloads(): string[] {
  return Object.values(Workload)
    .filter((v): v is Workload => typeof v === "number" && v !== Workload.WORKLOAD_UNSPECIFIED && v !== Workload.UNRECOGNIZED)
    .map((v) => workloads.name(v));
}

export function knownEngines(): string[] {
  return Object.values(Engine)
    .filter((v): v is Engine => typeof v === "number" && v > Engine.ENGINE_UNSPECIFIED)
    .map((v) => engines.name(v));
}
