import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { engines } from "../../contracts/enums.js";
import { WorkerServiceService, type WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import { assertSafeBind } from "../../contracts/runtime/api-key.js";
import { requireKey } from "../../contracts/runtime/auth/grpc-key-check.js";
import { KeyRing } from "../../contracts/runtime/auth/key-ring.js";
import { startGrpcServer, type RunningGrpcServer } from "../../contracts/runtime/grpc-server.js";
import { TLS_FLAG_NAMES } from "../../contracts/runtime/security-flags.js";
import { readTls, tlsSummary, type TlsMaterial } from "../../contracts/runtime/tls.js";
import { createLogger, type Logger } from "../../contracts/runtime/logger.js";
import { startMetricsServer, type MetricsServer } from "../../contracts/runtime/metrics-server.js";
import { DEFAULT_SHUTDOWN_GRACE_MS, drained } from "../../contracts/runtime/shutdown-grace.js";
import { processMetrics } from "../../contracts/runtime/process-metrics.js";
import { announceReady } from "../../contracts/runtime/ready-signal.js";
import type { EngineAdapter, EngineInfo } from "../engine-adapter.js";
import { registerHardwareMetrics } from "../hardware/hardware-metrics.js";
import { adapterNameOf, createAdapter } from "./adapter-factory.js";
import { createSidecarMetrics, type SidecarMetrics } from "./metrics.js";
import { startRegistration, type Registration } from "./registration.js";
import { ReplicaHardware } from "./replica-hardware.js";
import { SlotPool } from "./slot-pool.js";
import { WORKER_DEFAULTS, type WorkerConfig } from "./worker-config.js";
import { WorkerService, type SidecarIdentity } from "./worker-service.js";
import { DEFAULT_HOLD } from "./generation-table.js";

export { workerConfigFromFlags, workerFlagHelp, workerFlagNames, type MockConfig, type WorkerConfig } from "./worker-config.js";

export interface RunningWorker {
  /** host:port the gRPC server is bound to. */
  address: string;
  /** host:port of GET /metrics, when a metrics port was configured. */
  metricsAddress?: string;
  /** The replica id in use (defaults are derived from the bound port). */
  replicaId: string;
  /** How long stop() lets running generations finish. */
  shutdownGraceMs: number;
  /** Drains (not ready, new generations refused) for up to the grace, stops registering, ends what still runs (a retriable RESET) and shuts the servers down. */
  stop(): Promise<void>;
}

const SERVICE_NAME = "llama_orch.v1.WorkerService";

/**
 * Starts one sidecar: the engine adapter, WorkerService on gRPC, optionally
 * GET /metrics and registration with core. Resolves once the gRPC server
 * serves; the engine may still be loading (health says so), which is what
 * lets core and tests watch it become ready.
 */
export async function startWorker(
  config: WorkerConfig,
  logger: Logger = createLogger("worker", {}, undefined, config.logFormat),
): Promise<RunningWorker> {
  const host = config.host ?? WORKER_DEFAULTS.host;
  // Anyone who reaches WorkerService can fill the slots, cancel tasks and switch the model: it needs a worker key.
  const keys = KeyRing.load({ file: config.security?.keysFile, sharedKey: config.apiKey });
  assertSafeBind(host, keys.required, "the sidecar");
  const tls = readTls(config.security?.tls ?? {}, TLS_FLAG_NAMES);
  // The mock's devices and memory are simulated; every real engine's are measured.
  const hardware =
    adapterNameOf(config) === "mock"
      ? undefined
      : await ReplicaHardware.start({ deviceMask: config.deviceMask, pollIntervalMs: config.gpuPollMs }, logger);
  const sidecar = assembleSidecar(config, logger, hardware);
  const { adapter, identity, metrics } = sidecar;

  const grpc = await serveWorkerService(sidecar, { host, port: config.port ?? WORKER_DEFAULTS.port, keys, tls, logger });
  const stopReloading = keys.reloadOnSighup(logger);
  identity.replicaId ||= `${identity.poolId}-r${grpc.port}`;
  const log = logger.child({ pool_id: identity.poolId, replica_id: identity.replicaId });
  const stopMirroring = startEngine(sidecar, grpc, log);

  let metricsServer: MetricsServer | undefined;
  try {
    if (config.metricsPort !== undefined) {
      const registries = [metrics.registry, processMetrics()];
      metricsServer = await startMetricsServer(registries, config.metricsHost ?? WORKER_DEFAULTS.metricsHost, config.metricsPort);
    }
  } catch (err) {
    stopReloading();
    stopMirroring();
    await Promise.all([grpc.shutdown(), adapter.stop()]);
    throw err;
  }

  const info = adapter.info();
  const advertised = config.advertiseAddress ?? advertisable(host, grpc);
  const registration = config.coreAddress
    ? registerWithCore({ coreAddress: config.coreAddress, key: config.coreApiKey, tls }, sidecar, info, advertised, log)
    : undefined;
  logReady(log, sidecar, info, {
    grpc: grpc.address,
    advertised,
    metrics: metricsServer?.address,
    core: config.coreAddress,
    security: `${tlsSummary(tls)}, auth: ${keys.required ? `keys (${keys.size})` : "none (loopback only)"}`,
  });

  return {
    address: grpc.address,
    metricsAddress: metricsServer?.address,
    replicaId: identity.replicaId,
    shutdownGraceMs: config.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS,
    stop: stopOnce(
      sidecar,
      { registration, stopMirroring: () => (stopReloading(), stopMirroring()), grpc, metricsServer },
      config.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS,
      log,
    ),
  };
}

/** WorkerService over gRPC (TLS with a certificate), every method behind the worker-key check when keys are set. */
function serveWorkerService(
  sidecar: Sidecar,
  opts: { host: string; port: number; keys: KeyRing; tls: TlsMaterial | undefined; logger: Logger },
): Promise<RunningGrpcServer> {
  const { keys, logger } = opts;
  const implementation = requireKey(WorkerServiceService, sidecar.service.handlers, { ring: keys, roleOf: () => "worker", logger });
  return startGrpcServer({
    host: opts.host,
    port: opts.port,
    services: [{ name: SERVICE_NAME, definition: WorkerServiceService, implementation }],
    logger,
    tls: opts.tls,
    what: "sidecar",
  });
}

/** The sidecar's in-process parts, wired together before anything listens. */
interface Sidecar {
  adapter: EngineAdapter;
  slots: SlotPool;
  identity: SidecarIdentity;
  metrics: SidecarMetrics;
  service: WorkerService;
}

function assembleSidecar(config: WorkerConfig, logger: Logger, hardware: ReplicaHardware | undefined): Sidecar {
  const poolId = config.poolId ?? WORKER_DEFAULTS.poolId;
  let adapter: EngineAdapter;
  try {
    adapter = createAdapter(config, logger, hardware);
  } catch (err) {
    hardware?.stop();
    throw err;
  }
  const slots = new SlotPool(adapter.slotsTotal());
  const identity: SidecarIdentity = { poolId, replicaId: config.replicaId ?? "" };
  const labels = () => {
    const info = adapter.info();
    return {
      engine: engines.name(info.engine),
      engine_version: info.engineVersion,
      pool_id: identity.poolId,
      replica_id: identity.replicaId,
    };
  };
  const metrics = createSidecarMetrics({
    labels,
    slotsTotal: () => slots.total,
    slotsFree: () => slots.free,
    kvCacheUsageRatio: () => adapter.kvCacheUsageRatio?.(),
  });
  if (hardware) registerHardwareMetrics(metrics.registry, { labels, devices: () => hardware.devices() });
  const hold = { ...DEFAULT_HOLD, maxEvents: config.holdMaxEvents ?? DEFAULT_HOLD.maxEvents, holdMs: config.holdMs ?? DEFAULT_HOLD.holdMs };
  const service = new WorkerService({ adapter, slots, identity, metrics, logger, hardware, hold });
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
  core: { coreAddress: string; key: string | undefined; tls: TlsMaterial | undefined },
  { adapter, slots, identity, service }: Sidecar,
  info: EngineInfo,
  advertised: string,
  log: Logger,
): Registration {
  // Chosen once per process: re-registrations of this process prove it is the one holding its replica id.
  const instanceId = randomUUID();
  return startRegistration({
    coreAddress: core.coreAddress,
    apiKey: core.key,
    tls: core.tls,
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
      instanceId,
      // What core's lost calls left running here, for it to resume or cancel.
      heldTaskIds: service.heldTaskIds(),
    }),
    onLease: (state) => service.coreLease(state),
  });
}

function logReady(
  log: Logger,
  { adapter, slots, identity }: Sidecar,
  info: EngineInfo,
  addresses: { grpc: string; advertised: string; metrics: string | undefined; core: string | undefined; security: string },
): void {
  const engine = engines.name(info.engine);
  announceReady(
    log,
    {
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
      security: addresses.security,
    },
    `worker ${identity.replicaId} (${info.adapter} adapter for ${engine}, ${info.modelRef}) serving on ${addresses.grpc} (${addresses.security})`,
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
function stopOnce({ adapter, service, identity }: Sidecar, serving: Serving, graceMs: number, log: Logger): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    // Not ready for new work at once; what runs has the grace to finish while still registered
    // (leaving core's registry would end it as WORKER_RESET). Then leave, end the rest, stop the servers.
    service.beginDrain();
    log.info(
      { event: "shutting_down", running: service.runningCount, grace_ms: graceMs },
      `worker ${identity.replicaId} shutting down: ${service.runningCount} running generations have ${graceMs} ms to finish`,
    );
    if (!(await drained(() => service.runningCount === 0, graceMs))) {
      log.info({ event: "drained", running_left: service.runningCount }, `shutdown grace over: ${service.runningCount} generations end`);
    }
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

/** A wildcard bind is not an address core can dial; the machine's name is the best default. */
function advertisable(host: string, grpc: RunningGrpcServer): string {
  return host === "0.0.0.0" || host === "::" ? `${hostname()}:${grpc.port}` : grpc.address;
}
