import { connect } from "node:net";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Milliseconds from connecting until the server closed the connection. */
  closedAfterMs: number;
}

/**
 * Sends raw bytes to an HTTP server over a plain socket, in parts (each after
 * its delay), and reads until the server closes the connection: for requests
 * no HTTP client would send.
 */
export function rawRequest(url: string, parts: Array<string | Buffer | { waitMs: number }>, timeoutMs = 15_000): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const chunks: Buffer[] = [];
    const socket = connect(Number(port), hostname.replace(/^\[|\]$/g, ""));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => {}); // a reset after the answer is still an answer; "close" decides
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(parse(Buffer.concat(chunks).toString("latin1"), performance.now() - started));
    });
    socket.once("connect", () => {
      void (async () => {
        for (const part of parts) {
          if (socket.destroyed) return;
          if (typeof part === "object" && !Buffer.isBuffer(part)) await new Promise((r) => setTimeout(r, part.waitMs));
          else socket.write(part);
        }
      })();
    });
  });
}

function parse(text: string, closedAfterMs: number): RawResponse {
  const end = text.indexOf("\r\n\r\n");
  const head = end < 0 ? text : text.slice(0, end);
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0);
  return { status, headers, body: end < 0 ? "" : Buffer.from(text.slice(end + 4), "latin1").toString("utf8"), closedAfterMs };
}
