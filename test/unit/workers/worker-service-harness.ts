import type { ExecutionContext } from "ava";
import { credentials } from "@grpc/grpc-js";
import { WorkerServiceClient, WorkerServiceService } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { startGrpcServer } from "../../../contracts/runtime/grpc-server.js";
import type { Logger } from "../../../contracts/runtime/logger.js";
import type { EngineAdapter } from "../../../workers/engine-adapter.js";
import { createSidecarMetrics } from "../../../workers/sidecar/metrics.js";
import { SlotPool } from "../../../workers/sidecar/slot-pool.js";
import { WorkerService } from "../../../workers/sidecar/worker-service.js";
import { quietLogger } from "./helpers.js";

/** A WorkerService over `adapter` (started already) on a loopback port, and a client to it; both end with the test. */
export async function serveWorkerService(
  t: ExecutionContext,
  adapter: EngineAdapter,
  logger: Logger = quietLogger,
): Promise<WorkerServiceClient> {
  const slots = new SlotPool(adapter.slotsTotal());
  const metrics = createSidecarMetrics({
    labels: () => ({ engine: "llamacpp", engine_version: "x", pool_id: "p", replica_id: "r" }),
    slotsTotal: () => slots.total,
    slotsFree: () => slots.free,
    kvCacheUsageRatio: () => undefined,
  });
  const service = new WorkerService({ adapter, slots, identity: { poolId: "p", replicaId: "r" }, metrics, logger });
  const server = await startGrpcServer({
    host: "127.0.0.1",
    port: 0,
    services: [{ name: "llama_orch.v1.WorkerService", definition: WorkerServiceService, implementation: service.handlers }],
    logger,
  });
  const client = new WorkerServiceClient(server.address, credentials.createInsecure());
  t.teardown(async () => {
    client.close();
    service.close();
    await server.shutdown();
  });
  return client;
}
