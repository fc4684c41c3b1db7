import { availableParallelism, hostname } from "node:os";
import { engines } from "../../contracts/enums.js";
import { Engine, type Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerServiceService, type WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import { startGrpcServer, type RunningGrpcServer } from "../../contracts/runtime/grpc-server.js";
import { createLogger, type Logger } from "../../contracts/runtime/logger.js";
import { startMetricsServer, type MetricsServer } from "../../contracts/runtime/metrics-server.js";
import { workerErrorKinds, type EngineAdapter, type EngineInfo } from "../engine-adapter.js";
import { MOCK_DEFAULTS, MockEngine } from "../mock/mock-engine.js";
import { createLlamaCppAdapter } from "../llamacpp/llamacpp-adapter.js";
import { createOpenAiAdapter } from "../openai/openai-adapter.js";
import type { HttpEngineOptions } from "../http/engine-options.js";
import { createTgiAdapter } from "../tgi/tgi-adapter.js";
import { createTritonAdapter } from "../triton/triton-adapter.js";
import { createVllmAdapter } from "../vllm/vllm-adapter.js";
import { EngineSupervisor } from "../supervisor/engine-supervisor.js";
import { HEALTH_PATH, httpProbe, SupervisedAdapter } from "../supervisor/supervised-adapter.js";
import { createSidecarMetrics, type SidecarMetrics } from "./metrics.js";
import { startRegistration, type Registration } from "./registration.js";
import { SlotPool } from "./slot-pool.js";
import { EMBEDDED_DEFAULT_CTX, knownEngines, WORKER_DEFAULTS, type WorkerConfig } from "./worker-config.js";
import { defaultThreads, EmbeddedLlamaAdapter } from "../llamacpp-embedded/embedded-adapter.js";
import { localPathOf, parseModelRef } from "../../contracts/model-ref.js";
import { WorkerService, type SidecarIdentity } from "./worker-service.js";

export { workerConfigFromFlags, workerFlagHelp, workerFlagNames, type MockConfig, type WorkerConfig } from "./worker-config.js";

export interface RunningWorker {
  /** host:port the gRPC server is bound to. */
  address: string;
  /** host:port of GET /metrics, when a metrics port was configured. */
  metricsAddress?: string;
  /** The replica id in use (defaults are derived from the bound port). */
  replicaId: string;
  /** Stops registering, ends running generations (clients get a retriable RESET) and shuts the servers down. */
  stop(): Promise<void>;
}

const SERVICE_NAME = "llama_orch.v1.WorkerService";

/**
 * Starts one sidecar: the engine adapter, WorkerService on gRPC, optionally
 * GET /metrics and registration with core. Resolves once the gRPC server
 * serves; the engine may still be loading (health says so), which is what
 * lets core and tests watch it become ready.
 */
export async function startWorker(config: WorkerConfig, logger: Logger = createLogger("worker")): Promise<RunningWorker> {
  const host = config.host ?? WORKER_DEFAULTS.host;
  const sidecar = assembleSidecar(config, logger);
  const { adapter, identity, metrics } = sidecar;

  const grpc = await startGrpcServer({
    host,
    port: config.port ?? WORKER_DEFAULTS.port,
    services: [{ name: SERVICE_NAME, definition: WorkerServiceService, implementation: sidecar.service.handlers }],
    logger,
  });
  identity.replicaId ||= `${identity.poolId}-r${grpc.port}`;
  const log = logger.child({ pool_id: identity.poolId, replica_id: identity.replicaId });
  const stopMirroring = startEngine(sidecar, grpc, log);

  let metricsServer: MetricsServer | undefined;
  try {
    if (config.metricsPort !== undefined) {
      metricsServer = await startMetricsServer(metrics.registry, config.metricsHost ?? WORKER_DEFAULTS.metricsHost, config.metricsPort);
    }
  } catch (err) {
    stopMirroring();
    await Promise.all([grpc.shutdown(), adapter.stop()]);
    throw err;
  }

  const info = adapter.info();
  const advertised = config.advertiseAddress ?? advertisable(host, grpc);
  const registration = config.coreAddress
    ? registerWithCore(config.coreAddress, config.coreApiKey, sidecar, info, advertised, log)
    : undefined;
  logReady(log, sidecar, info, { grpc: grpc.address, advertised, metrics: metricsServer?.address, core: config.coreAddress });

  return {
    address: grpc.address,
    metricsAddress: metricsServer?.address,
    replicaId: identity.replicaId,
    stop: stopOnce(sidecar, { registration, stopMirroring, grpc, metricsServer }, log),
  };
}

/** The sidecar's in-process parts, wired together before anything listens. */
interface Sidecar {
  adapter: EngineAdapter;
  slots: SlotPool;
  identity: SidecarIdentity;
  metrics: SidecarMetrics;
  service: WorkerService;
}

function assembleSidecar(config: WorkerConfig, logger: Logger): Sidecar {
  const poolId = config.poolId ?? WORKER_DEFAULTS.poolId;
  const adapter = createAdapter(config, logger);
  const slots = new SlotPool(adapter.slotsTotal());
  const identity: SidecarIdentity = { poolId, replicaId: config.replicaId ?? "" };
  const metrics = createSidecarMetrics({
    labels: () => {
      const info = adapter.info();
      return {
        engine: engines.name(info.engine),
        engine_version: info.engineVersion,
        pool_id: identity.poolId,
        replica_id: identity.replicaId,
      };
    },
    slotsTotal: () => slots.total,
    slotsFree: () => slots.free,
    kvCacheUsageRatio: () => adapter.kvCacheUsageRatio?.(),
  });
  const service = new WorkerService({ adapter, slots, identity, metrics, logger });
  return { adapter, slots, identity, metrics, service };
}

/**
 * Starts the engine with grpc.health.v1 following its readiness, so plain
 * health probes see what core sees. Returns the unsubscribe of that mirror.
 */
function startEngine({ adapter, slots }: Sidecar, grpc: RunningGrpcServer, log: Logger): () => void {
  const mirrorHealth = (health: WorkerHealth): void => grpc.health.setStatus(SERVICE_NAME, health.ready ? "SERVING" : "NOT_SERVING");
  const stopMirroring = adapter.onHealthChange((health) => {
    // The engine's capacity is known once it answers.
    if (health.ready) slots.resize(Math.max(1, adapter.slotsTotal()));
    mirrorHealth(health);
  });
  adapter.start().catch((err: unknown) => log.error({ err, event: "engine_start_failed" }, "the engine failed to start"));
  mirrorHealth(adapter.health());
  return stopMirroring;
}

function registerWithCore(
  coreAddress: string,
  apiKey: string | undefined,
  { adapter, slots, identity }: Sidecar,
  info: EngineInfo,
  advertised: string,
  log: Logger,
): Registration {
  return startRegistration({
    coreAddress,
    apiKey,
    logger: log,
    // Read on every (re)registration: after a LoadModel, core must learn the model now served.
    request: () => ({
      address: advertised,
      poolId: identity.poolId,
      replicaId: identity.replicaId,
      engine: info.engine,
      modelRef: adapter.info().modelRef,
      slotsTotal: slots.total,
      servesAnyModel: info.servesAnyModel,
    }),
  });
}

function logReady(
  log: Logger,
  { adapter, slots, identity }: Sidecar,
  info: EngineInfo,
  addresses: { grpc: string; advertised: string; metrics: string | undefined; core: string | undefined },
): void {
  const engine = engines.name(info.engine);
  log.info(
    {
      event: "ready",
      address: addresses.grpc,
      advertise_address: addresses.advertised,
      metrics_address: addresses.metrics ?? null,
      core_address: addresses.core ?? null,
      engine,
      engine_version: info.engineVersion,
      adapter: info.adapter,
      model_ref: info.modelRef,
      slots_total: slots.total,
      engine_ready: adapter.health().ready,
    },
    `worker ${identity.replicaId} (${info.adapter} adapter for ${engine}, ${info.modelRef}) serving on ${addresses.grpc}`,
  );
}

/** What startWorker brought up around the sidecar, for stop() to take down. */
interface Serving {
  registration: Registration | undefined;
  stopMirroring: () => void;
  grpc: RunningGrpcServer;
  metricsServer: MetricsServer | undefined;
}

/** The stop sequence, run once however often stop() is called. */
function stopOnce({ adapter, service, identity }: Sidecar, serving: Serving, log: Logger): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    // Leave core's placement first, then end the work, then the servers.
    serving.registration?.stop();
    service.close();
    serving.stopMirroring();
    await serving.grpc.shutdown();
    await adapter.stop();
    await serving.metricsServer?.close();
    log.info({ event: "stopped" }, `worker ${identity.replicaId} stopped`);
  };
  return () => (stopping ??= stop());
}

/**
 * The engine adapter for this sidecar: the mock, or the real adapter for the
 * engine at --engine-url, optionally with the engine process started and
 * supervised (--engine-cmd).
 */
function createAdapter(config: WorkerConfig, logger: Logger): EngineAdapter {
  const engineName = config.engine ?? WORKER_DEFAULTS.engine;
  const engine = engines.parse(engineName);
  if (engine === undefined) throw new Error(`unknown engine "${engineName}" (known: ${knownEngines().join(", ")})`);
  const adapterName = config.adapter ?? (config.engineUrl ? engineName : isLocalGguf(config.modelRef) ? "llamacpp-embedded" : "mock");
  checkWorkloads(adapterName, config.workloads);
  if (adapterName === "mock") return createMock(config, engine);
  if (adapterName === "llamacpp-embedded") return createEmbedded(config, engine, logger);
  if (!config.engineUrl) throw new Error(`--engine-url is required for the ${adapterName} adapter`);
  if (!config.modelRef)
    throw new Error(`--model is required with a real engine: the model_ref tasks will ask for (e.g. hf:org/repo/file.gguf)`);
  const opts = dropUndefined({
    baseUrl: config.engineUrl,
    modelRef: config.modelRef,
    engineModel: config.engineModel,
    apiKey: config.engineApiKey,
    slots: config.mock?.slots,
    workloads: config.workloads,
  }) as HttpEngineOptions;
  const adapter = realAdapter(adapterName, opts, config);
  if (!config.engineCmd) return adapter;
  const supervisor = new EngineSupervisor({
    command: config.engineCmd,
    probe: httpProbe(config.engineUrl, HEALTH_PATH[adapterName] ?? "/health"),
    logger: logger.child({ engine_process: adapterName }),
  });
  return new SupervisedAdapter(adapter, supervisor);
}

function realAdapter(name: string, opts: HttpEngineOptions, config: WorkerConfig): EngineAdapter {
  switch (name) {
    case "llamacpp":
      return createLlamaCppAdapter(opts);
    case "vllm":
      return createVllmAdapter(opts);
    case "tgi":
      return createTgiAdapter(opts);
    case "triton":
      return createTritonAdapter({ ...opts, ...(config.mock?.ctxMax ? { ctxMax: config.mock.ctxMax } : {}) });
    case "openai":
      return createOpenAiAdapter(opts);
    default:
      throw new Error(`unknown adapter "${name}"`);
  }
}

/** Adapters whose engine serves what --workloads says; the others know what they serve (completion, or the model's own). */
const WORKLOAD_ADAPTERS = ["llamacpp", "vllm"];

function checkWorkloads(adapterName: string, workloads: Workload[] | undefined): void {
  if (!workloads || WORKLOAD_ADAPTERS.includes(adapterName)) return;
  throw new Error(`--workloads is for the ${WORKLOAD_ADAPTERS.join(" and ")} adapters; the ${adapterName} adapter knows what it serves`);
}

/** A model_ref naming a GGUF file on this machine: what the embedded engine runs. */
function isLocalGguf(modelRef: string | undefined): boolean {
  if (!modelRef) return false;
  try {
    const path = localPathOf(parseModelRef(modelRef), process.cwd());
    return path !== undefined && path.toLowerCase().endsWith(".gguf");
  } catch {
    return false;
  }
}

function createEmbedded(config: WorkerConfig, engine: Engine, logger: Logger): EngineAdapter {
  if (engine !== Engine.ENGINE_LLAMACPP)
    throw new Error(`the llamacpp-embedded adapter serves the llamacpp engine family, not ${engines.name(engine)}`);
  if (!config.modelRef) throw new Error("--model is required with the embedded engine: a GGUF file, e.g. file:/models/qwen.gguf");
  return new EmbeddedLlamaAdapter(
    {
      modelRef: config.modelRef,
      slots: config.mock?.slots ?? MOCK_DEFAULTS.slots,
      ctx: config.mock?.ctxMax ?? EMBEDDED_DEFAULT_CTX,
      threads: config.embedded?.threads ?? defaultThreads(availableParallelism()),
      gpu: config.embedded?.gpu ?? "auto",
      gpuLayers: config.embedded?.gpuLayers ?? "auto",
      deviceMask: config.deviceMask ?? "",
      baseDir: process.cwd(),
    },
    logger.child({ adapter: "llamacpp-embedded" }),
  );
}

function createMock(config: WorkerConfig, engine: Engine): EngineAdapter {
  const { failKind, ...mock } = config.mock ?? {};
  const kind = failKind === undefined ? undefined : workerErrorKinds.parse(failKind);
  if (failKind !== undefined && kind === undefined) {
    throw new Error(`unknown mock fail kind "${failKind}" (known: ${workerErrorKinds.names().join(", ")})`);
  }
  return new MockEngine(
    dropUndefined({
      ...mock,
      failKind: kind,
      engine,
      modelRef: config.modelRef,
      servesAnyModel: config.servesAnyModel,
      deviceMask: config.deviceMask,
    }),
  );
}

/** Keeps explicit `undefined`s from overriding defaults in an object spread. */
function dropUndefined<T extends object>(o: T): Partial<{ [K in keyof T]: Exclude<T[K], undefined> }> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<{ [K in keyof T]: Exclude<T[K], undefined> }>;
}

/** A wildcard bind is not an address core can dial; the machine's name is the best default. */
function advertisable(host: string, grpc: RunningGrpcServer): string {
  return host === "0.0.0.0" || host === "::" ? `${hostname()}:${grpc.port}` : grpc.address;
}
