import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import type { ServiceDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";
import { defaultModelCacheDir, hubEndpointOf } from "../contracts/model-cache.js";
import { ArtifactServiceService } from "../contracts/gen/llama_orch/v1/artifact.js";
import { CatalogServiceService } from "../contracts/gen/llama_orch/v1/catalog.js";
import { MetricsServiceService } from "../contracts/gen/llama_orch/v1/metrics.js";
import { CapabilitiesServiceService, PoolServiceService } from "../contracts/gen/llama_orch/v1/pool.js";
import { RegistryServiceService } from "../contracts/gen/llama_orch/v1/registry.js";
import { SessionServiceService } from "../contracts/gen/llama_orch/v1/session.js";
import { TaskServiceService } from "../contracts/gen/llama_orch/v1/task.js";
import { assertSafeBind } from "../contracts/runtime/api-key.js";
import { KeyRing } from "../contracts/runtime/auth/key-ring.js";
import { requireKey } from "../contracts/runtime/auth/grpc-key-check.js";
import { dialWith } from "../contracts/runtime/dial.js";
import { CLIENT_CHANNEL_OPTIONS, startGrpcServer, type HostedService, type RunningGrpcServer } from "../contracts/runtime/grpc-server.js";
import { TLS_FLAG_NAMES } from "../contracts/runtime/security-flags.js";
import { readTls, tlsSummary, type TlsMaterial } from "../contracts/runtime/tls.js";
import { createLogger, type Logger } from "../contracts/runtime/logger.js";
import { startMetricsServer, type MetricsServer } from "../contracts/runtime/metrics-server.js";
import { processMetrics } from "../contracts/runtime/process-metrics.js";
import { announceReady } from "../contracts/runtime/ready-signal.js";
import { drained } from "../contracts/runtime/shutdown-grace.js";
import { ArtifactStore } from "./artifacts/artifact-store.js";
import { CatalogStore } from "./catalog/catalog-store.js";
import { LoadDigests } from "./catalog/load-digests.js";
import { ModelRoots } from "./catalog/model-roots.js";
import type { CoreConfig } from "./core-config.js";
import { createCoreMetrics, type CoreMetrics } from "./metrics.js";
import { unservedModelAdvice } from "./pools/auto-fetch.js";
import { PoolReloader } from "./pools/pool-reloader.js";
import { ReplicaRegistry } from "./registry/replica-registry.js";
import { Scheduler } from "./scheduler/scheduler.js";
import { artifactService } from "./services/artifact-service.js";
import { catalogAdmissionCheck, catalogService } from "./services/catalog-service.js";
import { coreMethodRole } from "./services/method-roles.js";
import { metricsService } from "./services/metrics-service.js";
import { capabilitiesService, poolService } from "./services/pool-service.js";
import { registryService } from "./services/registry-service.js";
import { sessionService } from "./services/session-service.js";
import { taskService } from "./services/task-service.js";
import { SessionStore } from "./sessions/session-store.js";
import { TraceRecorder } from "./tasks/trace-recorder.js";
import { TaskJournal } from "./journal/task-journal.js";

/** Transcripts of long streams exceed what a client may upload; this bounds them. */
const TRANSCRIPT_MAX_BYTES = 256 * 1024 * 1024;

export interface RunningCore {
  address: string;
  metricsAddress?: string;
  instanceId: string;
  scheduler: Scheduler;
  registry: ReplicaRegistry;
  /** How long stop() lets running tasks finish. */
  shutdownGraceMs: number;
  stop(): Promise<void>;
}

/** Starts core: every llama_orch core service over gRPC, with reflection and health, and its durable stores. */
export async function startCore(
  config: CoreConfig,
  logger: Logger = createLogger("core", {}, undefined, config.logFormat),
): Promise<RunningCore> {
  const keys = KeyRing.load({ file: config.security.keysFile, sharedKey: config.apiKey });
  assertSafeBind(config.host, keys.required, "core");
  const tls = readTls(config.security.tls, TLS_FLAG_NAMES);
  const instanceId = randomUUID();
  const metrics = createCoreMetrics();
  const parts = await assembleCore(config, tls, metrics, logger);
  const grpc = await startGrpcServer({
    host: config.host,
    port: config.port,
    logger,
    tls,
    what: "core",
    services: coreServices(config, parts, { instanceId, keys, metrics, logger }),
  });
  const stopReloading = keys.reloadOnSighup(logger);
  if (keys.required && !config.ownKey) {
    logger.warn({ event: "no_own_key" }, "core has keys but no key of its own (LLORCH_KEY) to present to sidecars that require one");
  }
  let metricsServer: MetricsServer | undefined;
  if (config.metricsPort !== undefined) {
    metricsServer = await startMetricsServer([metrics.registry, processMetrics()], config.metricsHost ?? config.host, config.metricsPort);
  }
  const auth = keys.required ? `keys (${keys.size})` : "none (loopback only)";
  announceReady(
    logger,
    {
      address: grpc.address,
      metrics_address: metricsServer?.address,
      instance_id: instanceId,
      auth,
      transport: tlsSummary(tls),
    },
    `core listening on ${grpc.address} (gRPC, reflection on, ${tlsSummary(tls)}, auth: ${auth})`,
  );
  const { scheduler, registry, sweep, journal } = parts;
  return {
    address: grpc.address,
    metricsAddress: metricsServer?.address,
    instanceId,
    scheduler,
    registry,
    shutdownGraceMs: config.shutdownGraceMs,
    async stop() {
      await drain(scheduler, grpc, config.shutdownGraceMs, logger);
      stopReloading();
      clearInterval(sweep);
      scheduler.close();
      registry.closeAll();
      await grpc.shutdown(1_000);
      await journal.close();
      await parts.artifacts.close();
      await metricsServer?.close();
    },
  };
}

/**
 * SIGTERM: health says NOT_SERVING, admission refuses (SHUTTING_DOWN, with
 * a retry delay), queued tasks end at once; running ones have the grace to
 * finish. Every other call (streams, cancel, listings) goes on being served.
 */
async function drain(scheduler: Scheduler, grpc: RunningGrpcServer, graceMs: number, logger: Logger): Promise<void> {
  grpc.health.setStatus("", "NOT_SERVING");
  const { running, queued } = scheduler.beginShutdown();
  logger.info(
    { event: "shutting_down", running, queued_ended: queued, grace_ms: graceMs },
    `core shutting down: admitting nothing, ${queued} queued tasks ended, ${running} running tasks have ${graceMs} ms to finish`,
  );
  const done = await drained(() => scheduler.runningCount === 0, graceMs);
  const left = scheduler.runningCount;
  logger.info(
    { event: "drained", running_left: left },
    done ? "core drained: every running task finished" : `core's shutdown grace is over: ${left} running tasks end with SHUTTING_DOWN`,
  );
}

/** What core's services are built on: the scheduler and the stores it and they share. */
interface CoreParts {
  registry: ReplicaRegistry;
  sessions: SessionStore;
  /** Expires idle sessions; cleared on stop. */
  sweep: NodeJS.Timeout;
  scheduler: Scheduler;
  reloader: PoolReloader;
  catalog: CatalogStore;
  artifacts: ArtifactStore;
  journal: TaskJournal;
  /** The sidecars' model cache on this host, which catalog verify reads. */
  modelCacheRoot: string;
  /** All catalog verify may read: --model-roots and the model cache. */
  modelRoots: ModelRoots;
}

/** Opens the durable stores and wires the scheduler to them. */
async function assembleCore(config: CoreConfig, tls: TlsMaterial | undefined, metrics: CoreMetrics, logger: Logger): Promise<CoreParts> {
  // Core dials every sidecar with its own key (a worker key) and, with a CA, over TLS.
  const dial = dialWith({ tls, key: config.ownKey, channel: { ...CLIENT_CHANNEL_OPTIONS, "grpc.max_concurrent_streams": 10_000 } });
  const registry = new ReplicaRegistry(logger, dial);
  const sessions = new SessionStore(config.sessions);
  const sweep = setInterval(() => sessions.sweep(), 10_000);
  sweep.unref();
  const scheduler = new Scheduler(registry, sessions, metrics, logger, config.scheduler);
  const catalog = await CatalogStore.open(resolve(config.catalogRoot));
  const reloader = new PoolReloader({ scheduler, registry, digests: new LoadDigests(catalog), metrics, logger });
  const artifacts = await ArtifactStore.open(resolve(config.artifactsRoot), {
    maxBytes: TRANSCRIPT_MAX_BYTES,
    transcripts: { retentionMs: config.transcriptRetentionMs },
  });
  const { journal, recovery } = await TaskJournal.open(resolve(config.journalRoot), logger);
  scheduler.attach({
    admissionCheck: catalogAdmissionCheck(catalog),
    unservedModel: unservedModelAdvice({ autoFetch: config.autoFetch, scheduler, registry, reloader }),
    traceRecorder: config.transcripts ? new TraceRecorder(artifacts, logger) : undefined,
    journal,
  });
  const modelCacheRoot = resolve(config.modelCacheDir ?? defaultModelCacheDir());
  const modelRoots = await ModelRoots.of([...config.modelRoots, modelCacheRoot]);
  scheduler.restore(recovery);
  return { registry, sessions, sweep, scheduler, reloader, catalog, artifacts, journal, modelCacheRoot, modelRoots };
}

/** Every core service, each requiring a key of the role its methods need when keys are set. */
function coreServices(
  config: CoreConfig,
  parts: CoreParts,
  { instanceId, keys, metrics, logger }: { instanceId: string; keys: KeyRing; metrics: CoreMetrics; logger: Logger },
): HostedService[] {
  const { registry, sessions, scheduler, reloader, catalog, artifacts } = parts;
  const guarded = (name: string, definition: ServiceDefinition, implementation: UntypedServiceImplementation): HostedService => ({
    name: `llama_orch.v1.${name}`,
    definition,
    implementation: requireKey(definition, implementation, { ring: keys, roleOf: coreMethodRole(name), logger }),
  });
  return [
    guarded("TaskService", TaskServiceService, taskService(scheduler, logger)),
    guarded(
      "RegistryService",
      RegistryServiceService,
      registryService(registry, instanceId, (replica, request) => scheduler.reclaim(replica, request.heldTaskIds)),
    ),
    guarded("SessionService", SessionServiceService, sessionService(sessions, registry, logger)),
    guarded("PoolService", PoolServiceService, poolService(scheduler, reloader, logger)),
    guarded("CapabilitiesService", CapabilitiesServiceService, capabilitiesService(registry, logger)),
    guarded(
      "CatalogService",
      CatalogServiceService,
      catalogService({
        store: catalog,
        scheduler,
        metrics,
        logger,
        baseDir: process.cwd(),
        modelCache: { root: parts.modelCacheRoot, hubEndpoint: hubEndpointOf() },
        roots: parts.modelRoots,
      }),
    ),
    guarded("ArtifactService", ArtifactServiceService, artifactService(artifacts, config.artifactMaxBytes, logger)),
    guarded("MetricsService", MetricsServiceService, metricsService(metrics, logger)),
  ];
}
