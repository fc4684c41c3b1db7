import { createLogger, type Logger } from "../contracts/runtime/logger.js";
import { assertSafeBind } from "../contracts/runtime/api-key.js";
import { KeyRing } from "../contracts/runtime/auth/key-ring.js";
import type { Principal } from "../contracts/runtime/auth/roles.js";
import { dialWith } from "../contracts/runtime/dial.js";
import { CLIENT_CHANNEL_OPTIONS } from "../contracts/runtime/grpc-server.js";
import { readTls, tlsSummary, type TlsMaterial } from "../contracts/runtime/tls.js";
import { announceReady } from "../contracts/runtime/ready-signal.js";
import { createEdgeApp } from "./app.js";
import { CoreClient } from "./core-client.js";
import type { EdgeConfig } from "./edge-config.js";
import { createEdgeMetrics } from "./metrics.js";
import { assertCorsOrigins } from "./middleware/cors.js";
import { ModelDirectory } from "./compat/model-directory.js";
import { listen } from "./http-server.js";
import { EdgeShutdown } from "./shutdown.js";

export interface RunningEdge {
  url: string;
  /** How long stop() lets open streams and requests finish. */
  shutdownGraceMs: number;
  /** Drains (admission and /readyz 503 SHUTTING_DOWN) for up to the grace, cuts the streams left, closes. */
  stop(): Promise<void>;
}

export async function startEdge(
  config: EdgeConfig,
  logger: Logger = createLogger("edge", {}, undefined, config.logFormat),
): Promise<RunningEdge> {
  const keys = KeyRing.load({ file: config.keysFile, sharedKey: config.apiKey });
  assertSafeBind(config.host, keys.required, "the edge");
  assertCorsOrigins(config.corsOrigins, keys.required);
  const https = readTls(config.tls, { cert: "--tls-cert", key: "--tls-key", ca: "--tls-ca" });
  const coreTls = readTls(config.coreTls, { cert: "--core-tls-cert", key: "--core-tls-key", ca: "--core-tls-ca" });
  const dial = dialWith({
    tls: coreTls,
    key: config.ownKey,
    channel: { ...CLIENT_CHANNEL_OPTIONS, "grpc.max_concurrent_streams": 10_000 },
  });
  const core = new CoreClient(config.coreAddress, dial);
  // A loopback caller without a key (--auth-optional) acts with the edge's own key at core, so here it may do what that key may.
  const localhost = (): Principal => ({
    identity: "localhost",
    roles: (config.ownKey && keys.authenticate(config.ownKey)?.roles) || new Set(["client"]),
  });
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
    coreLossGraceMs: config.coreLossGraceMs,
    rateLimit: config.rateLimit,
    auth: { keys, optionalOnLoopback: config.authOptionalOnLoopback, localhost },
    trustProxy: config.trustProxy,
    corsOrigins: config.corsOrigins,
    compat: {
      models: new ModelDirectory(core, config.models),
      defaultDeadlineMs: config.defaultDeadlineMs,
      defaultMaxTokens: config.defaultMaxTokens,
    },
  });
  // Koa's handler catches its own errors (its promise never rejects), so Node may ignore the promise.
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  const { server, url } = await listen(config, app.callback(), { https, logger, metrics });
  logReady(logger, config, { url, keys, coreTls });
  const stopReloading = keys.reloadOnSighup(logger);
  return {
    url,
    shutdownGraceMs: config.shutdownGraceMs,
    async stop() {
      stopReloading();
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

function logReady(
  logger: Logger,
  config: EdgeConfig,
  { url, keys, coreTls }: { url: string; keys: KeyRing; coreTls: TlsMaterial | undefined },
): void {
  const auth = keys.required
    ? `keys (${keys.size})${config.authOptionalOnLoopback ? ", optional on loopback" : ""}`
    : "none (loopback only)";
  const toCore = tlsSummary(coreTls);
  announceReady(
    logger,
    { url, core_address: config.coreAddress, auth, core_transport: toCore, trust_proxy: config.trustProxy },
    `edge listening on ${url}, core at ${config.coreAddress} (${toCore}), auth: ${auth}`,
  );
  if (keys.required && !config.ownKey) {
    logger.warn(
      { event: "no_own_key" },
      "the edge has keys but no key of its own (LLORCH_KEY): /readyz and loopback callers without a key will be refused by core",
    );
  }
}
