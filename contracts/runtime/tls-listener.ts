import type { AddressInfo, Socket } from "node:net";
import { createServer, type TLSSocket } from "node:tls";
import { ServerCredentials, type Server } from "@grpc/grpc-js";
import type { Logger } from "./logger.js";
import type { TlsMaterial } from "./tls.js";

export interface TlsListener {
  port: number;
  close(): void;
}

/**
 * Serves a gRPC server over TLS from a TLS server of our own, whose
 * connections it hands to grpc-js once the handshake succeeded: grpc-js's own
 * TLS port says nothing when it refuses a peer, and an operator whose
 * sidecar cannot connect must read why (wrong CA, no client certificate) in
 * this process's log. With a CA, every client must present a certificate it
 * signed (mutual TLS).
 */
export async function listenTls(
  server: Server,
  opts: { host: string; port: number; tls: TlsMaterial; logger: Logger; what: string },
): Promise<TlsListener> {
  const { tls } = opts;
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const tlsServer = createServer({
    cert: tls.cert,
    key: tls.key,
    ca: tls.ca,
    requestCert: tls.ca !== undefined,
    rejectUnauthorized: tls.ca !== undefined,
    ALPNProtocols: ["h2"],
  });
  tlsServer.on("secureConnection", (socket: TLSSocket) => injector.injectConnection(socket));
  // By the time a handshake fails both sockets have lost their handles, so the peer is noted on arrival.
  const peers = new WeakMap<Socket, string>();
  tlsServer.prependListener("connection", (raw: Socket) => peers.set(raw, `${raw.remoteAddress}:${raw.remotePort}`));
  const refusals = new RefusalLog(opts.logger, opts.what);
  tlsServer.on("tlsClientError", (err: Error & { code?: string }, socket: TLSSocket) => {
    const raw = (socket as unknown as { _parent?: Socket })._parent;
    const peer = (raw && peers.get(raw)) ?? "unknown peer";
    // A client certificate that fails verification is refused after the handshake, and the error is only "socket hang up".
    const reason = socket.authorizationError
      ? `the client's certificate is not signed by this server's --tls-ca (${String(socket.authorizationError)})`
      : tlsReason(err, tls.ca !== undefined);
    refusals.note(peer, reason, err.code);
  });
  await new Promise<void>((resolve, reject) => {
    tlsServer.once("error", reject);
    tlsServer.listen(opts.port, opts.host, () => {
      tlsServer.off("error", reject);
      resolve();
    });
  });
  return {
    port: (tlsServer.address() as AddressInfo).port,
    close: () => {
      tlsServer.close();
      injector.destroy();
    },
  };
}

/** OpenSSL's words for a refused handshake, with what the operator should check. */
export function tlsReason(err: Error & { code?: string }, mutual: boolean): string {
  const text = `${err.code ?? ""} ${err.message}`;
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|NO_CERTIFICATE/i.test(text))
    return "the client presented no certificate (this server requires one signed by its --tls-ca)";
  if (mutual && /CERTIFICATE_VERIFY_FAILED|unknown ca|self.signed|unable to (get|verify)/i.test(text))
    return `the client's certificate is not signed by this server's --tls-ca (${err.message.trim()})`;
  if (/ECONNRESET|socket hang up/i.test(text))
    return "the client closed the connection during the handshake (does it trust this server's certificate?)";
  if (/alert (unknown ca|bad certificate|certificate unknown)|ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN)/i.test(text))
    return `the client does not trust this server's certificate (check the client's CA; ${err.message.trim()})`;
  if (/wrong version number|http request|unknown protocol/i.test(text)) return "the client spoke plaintext to a TLS port";
  return err.message.trim() || String(err.code);
}

/** How often the same refusal of the same client address is logged again: a misconfigured sidecar retries every few seconds. */
const REPEAT_MS = 60_000;

/** One line per client address and reason per minute, with how many were left out. */
class RefusalLog {
  private readonly last = new Map<string, { at: number; quiet: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly what: string,
  ) {}

  note(peer: string, reason: string, code: string | undefined): void {
    const key = `${peer.replace(/:\d+$/, "")} ${reason}`;
    const now = Date.now();
    const seen = this.last.get(key);
    if (seen && now - seen.at < REPEAT_MS) {
      seen.quiet++;
      return;
    }
    if (this.last.size > 1_000) this.last.clear();
    this.last.set(key, { at: now, quiet: 0 });
    const again = seen?.quiet ? ` (${seen.quiet} more like it since the last line)` : "";
    this.logger.warn({ event: "tls_refused", peer, reason, code }, `${this.what}: TLS handshake from ${peer} refused: ${reason}${again}`);
  }
}
