import { createServer, maxHeaderSize, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createLogger, type Logger } from "../contracts/runtime/logger.js";
import { assertSafeBind } from "../contracts/runtime/api-key.js";
import { createEdgeApp } from "./app.js";
import { CoreClient } from "./core-client.js";
import type { EdgeConfig } from "./edge-config.js";
import { createEdgeMetrics, type EdgeMetrics } from "./metrics.js";
import { assertCorsOrigins } from "./middleware/cors.js";
import { ModelDirectory } from "./compat/model-directory.js";
import { answerClientError } from "./client-errors.js";
import { EdgeShutdown } from "./shutdown.js";

export interface RunningEdge {
  url: string;
  /** How long stop() lets open streams and requests finish. */
  shutdownGraceMs: number;
  /** Drains (admission and /readyz 503 SHUTTING_DOWN) for up to the grace, cuts the streams left, closes. */
  stop(): Promise<void>;
}

/**
 * Node's HTTP server with the edge's timeouts: headers and whole requests
 * (bodies) must arrive in time, which Node checks at connectionsCheckingInterval
 * (30 s by default, so checked more often here), and every parser error or
 * timeout gets the error envelope.
 */
function createHttpServer(
  config: EdgeConfig,
  handler: ReturnType<ReturnType<typeof createEdgeApp>["callback"]>,
  logger: Logger,
  metrics: EdgeMetrics,
): Server {
  const shortest = Math.min(config.headersTimeoutMs, config.requestTimeoutMs || config.headersTimeoutMs);
  const server = createServer(
    {
      noDelay: true,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(shortest / 4))),
      maxHeaderSize,
    },
    // Koa's handler catches its own errors (its promise never rejects), so Node may ignore the promise.
    // eslint-disable-next-line @typescript-eslint/no-misused-promises
    handler,
  );
  const limits = { maxHeaderBytes: maxHeaderSize, headersTimeoutMs: config.headersTimeoutMs, requestTimeoutMs: config.requestTimeoutMs };
  server.on("clientError", answerClientError(limits, logger, metrics));
  return server;
}

export async function startEdge(config: EdgeConfig, logger: Logger = createLogger("edge")): Promise<RunningEdge> {
  assertSafeBind(config.host, config.apiKey, "the edge");
  assertCorsOrigins(config.corsOrigins, config.apiKey);
  const core = new CoreClient(config.coreAddress, config.apiKey);
  const metrics = createEdgeMetrics();
  const shutdown = new EdgeShutdown(logger);
  const app = createEdgeApp({
    shutdown,
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
  const server = createHttpServer(config, app.callback(), logger, metrics);
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
    shutdownGraceMs: config.shutdownGraceMs,
    async stop() {
      await shutdown.drain(config.shutdownGraceMs);
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
