import type { FlagSpec, FlagTable } from "./flag-table.js";
import { flagText } from "./flag-values.js";
import type { TlsFiles } from "./tls.js";

/** What a gRPC process (core, a sidecar) is secured with, as its flags name it. */
export interface SecuritySettings {
  /** Named keys with roles (YAML, sha256 hashes only), reloaded on SIGHUP. */
  keysFile?: string;
  /** Its certificate and key (served, and presented as a client certificate), and the CA of its peers. */
  tls: TlsFiles;
}

/** The flags names that readTls reports problems under. */
export const TLS_FLAG_NAMES = { cert: "--tls-cert", key: "--tls-key", ca: "--tls-ca" } as const;

/**
 * --keys-file, --tls-cert, --tls-key and --tls-ca, shared by core and the
 * sidecar: `peers` says whom the CA is for (the servers this process dials,
 * and the clients its own server then requires certificates of).
 */
export function securityFlags<C>(settings: (c: C) => SecuritySettings, peers: string): FlagTable<C> {
  const file = (name: string, help: string | undefined, set: (s: SecuritySettings, v: string) => void): FlagSpec<C> => ({
    name,
    arg: "FILE",
    help,
    apply: (c, v, f) => set(settings(c), flagText(f, v)),
  });
  return [
    file(
      "keys-file",
      "named keys with roles (client, admin, worker) as sha256 hashes, YAML; reloaded on\nSIGHUP (see llorch key); LLORCH_API_KEY adds one key holding every role",
      (s, v) => (s.keysFile = v),
    ),
    {
      ...file("tls-cert", undefined, (s, v) => (s.tls.cert = v)),
      usage: "--tls-cert FILE, --tls-key FILE",
      help: "\nserve gRPC over TLS with this certificate (PEM) and key; also the client\ncertificate presented to peers that require one",
    },
    file("tls-key", undefined, (s, v) => (s.tls.key = v)),
    file(
      "tls-ca",
      `CA (PEM) of ${peers}: dial them over TLS, verified against it, and require\nclient certificates it signed from every caller of this server (mutual TLS)`,
      (s, v) => (s.tls.ca = v),
    ),
  ];
}
