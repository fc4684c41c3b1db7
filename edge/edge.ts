import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createLogger, type Logger } from "../contracts/runtime/logger.js";
import { assertSafeBind } from "../contracts/runtime/api-key.js";
import { createEdgeApp } from "./app.js";
import { CoreClient } from "./core-client.js";
import type { EdgeConfig } from "./edge-config.js";
import { createEdgeMetrics } from "./metrics.js";
import { assertCorsOrigins } from "./middleware/cors.js";
import { ModelDirectory } from "./compat/model-directory.js";

export interface RunningEdge {
  url: string;
  stop(): Promise<void>;
}

export async function startEdge(config: EdgeConfig, logger: Logger = createLogger("edge")): Promise<RunningEdge> {
  assertSafeBind(config.host, config.apiKey, "the edge");
  assertCorsOrigins(config.corsOrigins, config.apiKey);
  const core = new CoreClient(config.coreAddress, config.apiKey);
  const metrics = createEdgeMetrics();
  const app = createEdgeApp({
    core,
    logger,
    metrics,
    bodyLimitBytes: config.bodyLimitBytes,
    jsonMaxDepth: config.jsonMaxDepth,
    sseHeartbeatMs: config.sseHeartbeatMs,
    rateLimit: config.rateLimit,
    auth: { apiKey: config.apiKey, optionalOnLoopback: config.authOptionalOnLoopback },
    corsOrigins: config.corsOrigins,
    compat: {
      models: new ModelDirectory(core, config.models),
      defaultDeadlineMs: config.defaultDeadlineMs,
      defaultMaxTokens: config.defaultMaxTokens,
    },
  });
  // Koa's handler catches its own errors (its promise never rejects), so Node may ignore the promise.
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  const server: Server = createServer({ noDelay: true, keepAliveTimeout: 65_000 }, app.callback());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  const auth = config.apiKey ? (config.authOptionalOnLoopback ? "api-key (optional on loopback)" : "api-key") : "none (loopback only)";
  logger.info(
    { event: "ready", url, core_address: config.coreAddress, auth },
    `edge listening on ${url}, core at ${config.coreAddress}, auth: ${auth}`,
  );
  return {
    url,
    async stop() {
      server.closeIdleConnections();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        setTimeout(() => {
          server.closeAllConnections();
        }, 1_000).unref();
      });
      core.close();
    },
  };
}
