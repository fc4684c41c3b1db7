import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "./logger.js";
import { fileDescriptorProtos } from "./descriptors.js";
import { listenTls, type TlsListener } from "./tls-listener.js";
import type { TlsMaterial } from "./tls.js";

export interface HostedService {
  /** Fully qualified name, e.g. "llama_orch.v1.WorkerService" (for reflection and health). */
  name: string;
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

export interface RunningGrpcServer {
  server: Server;
  /** host:port actually bound (port 0 resolves to an ephemeral port). */
  address: string;
  port: number;
  /** Standard grpc.health.v1 status, one entry per hosted service plus "". */
  health: HealthImplementation;
  shutdown(graceMs?: number): Promise<void>;
}

/** Keepalive so a peer that vanishes without closing its socket is noticed. */
export const KEEPALIVE_OPTIONS = {
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.keepalive_permit_without_calls": 1,
} as const;

/**
 * Client channel options: keepalive, and reconnect attempts at most a second
 * apart, so a peer that restarts (core, a sidecar) is found again promptly
 * instead of after grpc's default backoff of up to two minutes.
 */
export const CLIENT_CHANNEL_OPTIONS = {
  ...KEEPALIVE_OPTIONS,
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1_000,
} as const;

/**
 * Starts a gRPC server hosting `services` plus server reflection (v1 and
 * v1alpha) and grpc.health.v1, the two things operators' tools rely on.
 */
export async function startGrpcServer(opts: {
  host: string;
  port: number;
  services: HostedService[];
  logger: Logger;
  /** Serve over TLS with this certificate (and require client certificates signed by its CA, when it has one). */
  tls?: TlsMaterial;
  /** Names the server in TLS refusal log lines, e.g. "core". */
  what?: string;
}): Promise<RunningGrpcServer> {
  const server = new Server({ ...KEEPALIVE_OPTIONS, "grpc.max_concurrent_streams": 10_000 });
  for (const s of opts.services) server.addService(s.definition, s.implementation);

  const health = new HealthImplementation({ "": "SERVING" });
  for (const s of opts.services) health.setStatus(s.name, "SERVING");
  health.addToServer(server);

  const packageDefinition = { llama_orch: { fileDescriptorProtos: fileDescriptorProtos() } };
  const reflection = new ReflectionService(packageDefinition as never, {
    services: [...opts.services.map((s) => s.name), "grpc.health.v1.Health"],
  });
  reflection.addToServer(server);

  let tlsListener: TlsListener | undefined;
  let port: number;
  if (opts.tls?.cert) {
    tlsListener = await listenTls(server, { ...opts, tls: opts.tls, what: opts.what ?? "gRPC server" });
    port = tlsListener.port;
  } else {
    const bindTo = opts.host.includes(":") ? `[${opts.host}]:${opts.port}` : `${opts.host}:${opts.port}`;
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(bindTo, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
  }
  const address = opts.host.includes(":") ? `[${opts.host}]:${port}` : `${opts.host}:${port}`;

  return {
    server,
    address,
    port,
    health,
    shutdown: (graceMs = 2_000) =>
      new Promise<void>((resolve) => {
        tlsListener?.close();
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
