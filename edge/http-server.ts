import { createServer, maxHeaderSize, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Logger } from "../contracts/runtime/logger.js";
import type { TlsMaterial } from "../contracts/runtime/tls.js";
import { answerClientError } from "./client-errors.js";
import type { EdgeConfig } from "./edge-config.js";
import type { EdgeMetrics } from "./metrics.js";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Node's HTTP (or, with the edge's certificate, HTTPS) server with the edge's
 * timeouts: headers and whole requests (bodies) must arrive in time, which
 * Node checks at connectionsCheckingInterval (30 s by default, so checked more
 * often here), and every parser error or timeout gets the error envelope.
 */
function createEdgeServer(
  config: EdgeConfig,
  handler: Handler,
  https: TlsMaterial | undefined,
  logger: Logger,
  metrics: EdgeMetrics,
): Server {
  const shortest = Math.min(config.headersTimeoutMs, config.requestTimeoutMs || config.headersTimeoutMs);
  const options = {
    noDelay: true,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(shortest / 4))),
    maxHeaderSize,
  };
  const server: Server = https?.cert
    ? createHttpsServer({ ...options, cert: https.cert, key: https.key }, handler)
    : createServer(options, handler);
  const limits = { maxHeaderBytes: maxHeaderSize, headersTimeoutMs: config.headersTimeoutMs, requestTimeoutMs: config.requestTimeoutMs };
  server.on("clientError", answerClientError(limits, logger, metrics));
  return server;
}

/** Starts the edge's server on its address; resolves once listening, with the URL clients use. */
export async function listen(
  config: EdgeConfig,
  handler: Handler,
  { https, logger, metrics }: { https: TlsMaterial | undefined; logger: Logger; metrics: EdgeMetrics },
): Promise<{ server: Server; url: string }> {
  const server = createEdgeServer(config, handler, https, logger, metrics);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  return { server, url: `${https?.cert ? "https" : "http"}://${host}:${port}` };
}
