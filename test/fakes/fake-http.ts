// What the fake engines in this folder share: the record each keeps of a
// request, and the plumbing of an HTTP server that listens on loopback and
// can be killed like a crashed engine.
import type http from "node:http";
import type { AddressInfo } from "node:net";

/** One request as a fake engine saw it; live: the flags change while its response runs. */
export interface FakeRequest<Body = unknown> {
  method: string;
  /** Without the query. */
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The parsed JSON body of a POST, else undefined. */
  body: Body;
  /** The client closed the connection before the fake had finished the response: how an engine sees a cancel. */
  closedByClient: boolean;
  /** The fake wrote its whole response. */
  finished: boolean;
}

/** Listens on `host:port` (0: a free port); resolves with the bound port and the URL to reach it. */
export async function listen(server: http.Server, port: number, host = "127.0.0.1"): Promise<{ url: string; port: number }> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  return { url: `http://${host}:${bound}`, port: bound };
}

/** Stops listening and drops every connection, streams in progress included, as a crashed engine would. */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** The whole request body as UTF-8. */
export function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}
