import { randomUUID } from "node:crypto";
import { RegistryServiceService } from "../contracts/gen/llama_orch/v1/registry.js";
import { TaskServiceService } from "../contracts/gen/llama_orch/v1/task.js";
import { startGrpcServer } from "../contracts/runtime/grpc-server.js";
import { assertSafeBind } from "../contracts/runtime/api-key.js";
import { requireApiKey } from "../contracts/runtime/require-api-key.js";
import { createLogger, type Logger } from "../contracts/runtime/logger.js";
import { startMetricsServer, type MetricsServer } from "../contracts/runtime/metrics-server.js";
import { createCoreMetrics } from "./metrics.js";
import { ReplicaRegistry } from "./registry/replica-registry.js";
import { DEFAULT_SCHEDULER_OPTIONS, Scheduler, type SchedulerOptions } from "./scheduler/scheduler.js";
import { registryService } from "./services/registry-service.js";
import { sessionService } from "./services/session-service.js";
import { DEFAULT_SESSION_OPTIONS, SessionStore, type SessionOptions } from "./sessions/session-store.js";
import { SessionServiceService } from "../contracts/gen/llama_orch/v1/session.js";
import { taskService } from "./services/task-service.js";

export interface CoreConfig {
  host: string;
  port: number;
  /** Prometheus endpoint; none when undefined. */
  metricsHost?: string;
  metricsPort?: number;
  scheduler: SchedulerOptions;
  sessions: SessionOptions;
  /** Required on TaskService, SessionService and RegistryService calls when set. */
  apiKey?: string;
}

export const DEFAULT_CORE_CONFIG: CoreConfig = {
  host: "127.0.0.1",
  port: 50051,
  scheduler: DEFAULT_SCHEDULER_OPTIONS,
  sessions: DEFAULT_SESSION_OPTIONS,
};

export interface RunningCore {
  address: string;
  metricsAddress?: string;
  instanceId: string;
  scheduler: Scheduler;
  registry: ReplicaRegistry;
  stop(): Promise<void>;
}

/** Starts core: the task and registry gRPC services, with reflection and health. */
export async function startCore(config: CoreConfig, logger: Logger = createLogger("core")): Promise<RunningCore> {
  assertSafeBind(config.host, config.apiKey, "core");
  const instanceId = randomUUID();
  const metrics = createCoreMetrics();
  const registry = new ReplicaRegistry(logger);
  const sessions = new SessionStore(config.sessions);
  const sweep = setInterval(() => sessions.sweep(), 10_000);
  sweep.unref();
  const scheduler = new Scheduler(registry, sessions, metrics, logger, config.scheduler);
  const grpc = await startGrpcServer({
    host: config.host,
    port: config.port,
    logger,
    services: [
      { name: "llama_orch.v1.TaskService", definition: TaskServiceService, implementation: requireApiKey(TaskServiceService, taskService(scheduler, logger), config.apiKey) },
      { name: "llama_orch.v1.RegistryService", definition: RegistryServiceService, implementation: requireApiKey(RegistryServiceService, registryService(registry, instanceId), config.apiKey) },
      { name: "llama_orch.v1.SessionService", definition: SessionServiceService, implementation: requireApiKey(SessionServiceService, sessionService(sessions, registry, logger), config.apiKey) },
    ],
  });
  let metricsServer: MetricsServer | undefined;
  if (config.metricsPort !== undefined) {
    metricsServer = await startMetricsServer(metrics.registry, config.metricsHost ?? config.host, config.metricsPort);
  }
  logger.info(
    { event: "ready", address: grpc.address, metrics_address: metricsServer?.address, instance_id: instanceId, auth: config.apiKey ? "api-key" : "none (loopback only)" },
    `core listening on ${grpc.address} (gRPC, reflection on)`,
  );
  return {
    address: grpc.address,
    metricsAddress: metricsServer?.address,
    instanceId,
    scheduler,
    registry,
    async stop() {
      clearInterval(sweep);
      scheduler.close();
      registry.closeAll();
      await grpc.shutdown(1_000);
      await metricsServer?.close();
    },
  };
}
