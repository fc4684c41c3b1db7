import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createLogger, type Logger } from "../contracts/runtime/logger.js";
import { assertSafeBind } from "../contracts/runtime/api-key.js";
import { createEdgeApp } from "./app.js";
import { CoreClient } from "./core-client.js";
import { createEdgeMetrics } from "./metrics.js";
import type { RateLimit } from "./middleware/rate-limit.js";

export interface EdgeConfig {
  host: string;
  port: number;
  /** host:port of core's gRPC server. */
  coreAddress: string;
  /** Largest accepted request body. */
  bodyLimitBytes: number;
  /** A comment line on an SSE stream idle this long keeps proxies from closing it (0 = never). */
  sseHeartbeatMs: number;
  /** Per-caller limit on task submissions. */
  rateLimit: RateLimit;
  /** Clients must present it (and the edge presents it to core); undefined only on loopback. */
  apiKey?: string;
  /** Loopback clients may omit the key. */
  authOptionalOnLoopback: boolean;
}

export const DEFAULT_EDGE_CONFIG: EdgeConfig = {
  host: "127.0.0.1",
  port: 8080,
  coreAddress: "127.0.0.1:50051",
  bodyLimitBytes: 1024 * 1024,
  sseHeartbeatMs: 15_000,
  rateLimit: { perSecond: 0, burst: 1 },
  authOptionalOnLoopback: false,
};

export interface RunningEdge {
  url: string;
  stop(): Promise<void>;
}

export async function startEdge(config: EdgeConfig, logger: Logger = createLogger("edge")): Promise<RunningEdge> {
  assertSafeBind(config.host, config.apiKey, "the edge");
  const core = new CoreClient(config.coreAddress, config.apiKey);
  const metrics = createEdgeMetrics();
  const app = createEdgeApp({
    core,
    logger,
    metrics,
    bodyLimitBytes: config.bodyLimitBytes,
    sseHeartbeatMs: config.sseHeartbeatMs,
    rateLimit: config.rateLimit,
    auth: { apiKey: config.apiKey, optionalOnLoopback: config.authOptionalOnLoopback },
  });
  const server: Server = createServer({ noDelay: true, keepAliveTimeout: 65_000 }, app.callback());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  const auth = config.apiKey ? (config.authOptionalOnLoopback ? "api-key (optional on loopback)" : "api-key") : "none (loopback only)";
  logger.info({ event: "ready", url, core_address: config.coreAddress, auth }, `edge listening on ${url}, core at ${config.coreAddress}, auth: ${auth}`);
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
