import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { credentials, type ChannelCredentials } from "@grpc/grpc-js";

/** A process's TLS files as its flags name them: its own certificate and key, and the CA its peers' certificates are signed by. */
export interface TlsFiles {
  cert?: string;
  key?: string;
  ca?: string;
}

/** The PEM contents, read and checked once at start. */
export interface TlsMaterial {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

/**
 * Reads and checks the files: cert and key come together and belong to each
 * other, and each parses. Throws an Error naming the flag at fault (a process
 * must not start half-secured); undefined when no file is given.
 */
export function readTls(files: TlsFiles, flags: { cert: string; key: string; ca: string }): TlsMaterial | undefined {
  if (!files.cert && !files.key && !files.ca) return undefined;
  if (!files.cert !== !files.key) throw new Error(`${flags.cert} and ${flags.key} go together: give both or neither`);
  const m: TlsMaterial = {};
  if (files.cert && files.key) {
    m.cert = readPem(files.cert, flags.cert);
    m.key = readPem(files.key, flags.key);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(m.cert);
    } catch (err) {
      throw new Error(`${flags.cert} ${files.cert} is not a PEM certificate: ${(err as Error).message}`, { cause: err });
    }
    try {
      if (!cert.checkPrivateKey(createPrivateKey(m.key))) throw new Error("it is the key of another certificate");
    } catch (err) {
      throw new Error(`${flags.key} ${files.key} is not the private key of ${flags.cert} ${files.cert}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  if (files.ca) {
    m.ca = readPem(files.ca, flags.ca);
    try {
      new X509Certificate(m.ca);
    } catch (err) {
      throw new Error(`${flags.ca} ${files.ca} is not a PEM certificate: ${(err as Error).message}`, { cause: err });
    }
  }
  return m;
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/**
 * How this process dials a peer: TLS verified against the CA when one is
 * given (presenting its own certificate, for servers that require one),
 * plaintext otherwise.
 */
export function channelCredentialsOf(tls: TlsMaterial | undefined): ChannelCredentials {
  if (!tls?.ca) return credentials.createInsecure();
  return credentials.createSsl(tls.ca, tls.key ?? null, tls.cert ?? null);
}

/** How the process describes its transport in its ready line. */
export function tlsSummary(tls: TlsMaterial | undefined): string {
  if (!tls?.cert) return tls?.ca ? "plaintext server, TLS to peers" : "plaintext";
  return tls.ca ? "mutual TLS" : "TLS";
}
