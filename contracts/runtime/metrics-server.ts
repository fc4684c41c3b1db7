import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { prometheusContentType, type Registry } from "prom-client";
import { exposition } from "./process-metrics.js";

export interface MetricsServer {
  address: string;
  close(): Promise<void>;
}

/** Serves `GET /metrics` (the registries one after the other) for processes that have no HTTP API of their own (core, sidecars). */
export async function startMetricsServer(registries: readonly Registry[], host: string, port: number): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method === "GET" && (req.url === "/metrics" || req.url?.startsWith("/metrics?"))) {
      exposition(registries).then(
        (text) => {
          res.writeHead(200, { "content-type": prometheusContentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(err.message);
        },
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found: only GET /metrics is served here\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    address: `${host.includes(":") ? `[${host}]` : host}:${a.port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
