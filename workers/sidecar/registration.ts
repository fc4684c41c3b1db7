import { Metadata, type ClientReadableStream, type StatusObject } from "@grpc/grpc-js";
import { RegistryServiceClient, type RegisterRequest, type RegisterResponse } from "../../contracts/gen/llama_orch/v1/registry.js";
import { CLIENT_CHANNEL_OPTIONS } from "../../contracts/runtime/grpc-server.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { channelCredentialsOf, type TlsMaterial } from "../../contracts/runtime/tls.js";

export interface RegistrationOptions {
  coreAddress: string;
  /**
   * What to register; a function is read again on every (re)registration, so
   * a sidecar that switched models (LoadModel) re-registers with the current one.
   */
  request: RegisterRequest | (() => RegisterRequest);
  /** The key presented to core (a worker key); registration needs it like every other call to core. Never logged. */
  apiKey?: string;
  /** With a CA: dial core over TLS, verified against it, presenting this sidecar's certificate. */
  tls?: TlsMaterial;
  logger: Logger;
  backoff?: Partial<Backoff>;
  /** Told when core accepts the lease, and when an accepted lease ends (core went away). */
  onLease?: (state: "accepted" | "lost") => void;
}

export interface Backoff {
  initialMs: number;
  maxMs: number;
  /** ±fraction applied to each delay, so sidecars that lost the same core do not return in lockstep. */
  jitter: number;
}

const DEFAULT_BACKOFF: Backoff = { initialMs: 100, maxMs: 2_000, jitter: 0.2 };

export interface Registration {
  stop(): void;
}

/**
 * Keeps this sidecar registered with core. The Register stream is the lease:
 * it stays open while the sidecar serves, and whenever it ends or fails (core
 * restarted, network gone) the sidecar registers again with capped, jittered
 * exponential backoff, forever, until stopped.
 *
 * Logging is per state change: the first failure, the (re)acceptance, and the
 * loss of an accepted registration; never one line per retry.
 */
export function startRegistration(options: RegistrationOptions): Registration {
  const lease = new RegistrationLease(options);
  lease.register();
  return { stop: () => lease.stop() };
}

/** The one owner of the Register call in flight, the retry timer and what was last logged. */
class RegistrationLease {
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private readonly client: RegistryServiceClient;
  private readonly metadata: Metadata;
  private stopped = false;
  private call: ClientReadableStream<RegisterResponse> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Consecutive attempts that failed or were accepted only briefly; drives the backoff. */
  private failures = 0;
  /** What was last logged, so a flapping core costs one line per change, not per attempt. */
  private logged: "registered" | "retrying" | undefined;
  private coreInstanceId = "";

  constructor(private readonly options: RegistrationOptions) {
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.log = options.logger.child({ core_address: options.coreAddress });
    this.client = new RegistryServiceClient(options.coreAddress, channelCredentialsOf(options.tls), {
      ...CLIENT_CHANNEL_OPTIONS,
      // The channel's own reconnect backoff (up to 120 s by default) would otherwise
      // outlast ours and keep a restarted core waiting for this sidecar.
      "grpc.initial_reconnect_backoff_ms": this.backoff.initialMs,
      "grpc.max_reconnect_backoff_ms": this.backoff.maxMs,
    });
    this.metadata = new Metadata();
    if (options.apiKey) this.metadata.set("authorization", `Bearer ${options.apiKey}`);
  }

  register(): void {
    this.retryTimer = undefined;
    if (this.stopped) return;
    const request = typeof this.options.request === "function" ? this.options.request() : this.options.request;
    const current = this.client.register(request, this.metadata);
    this.call = current;
    let acceptedAt: number | undefined;
    current.on("data", (message: RegisterResponse) => {
      if (message.kind?.$case !== "accepted") return;
      acceptedAt = Date.now();
      this.accepted(message.kind.accepted.coreInstanceId);
      this.options.onLease?.("accepted");
    });
    // 'status' comes exactly once per call, after 'end' or 'error'; listening to 'error' keeps it from throwing.
    current.on("error", () => {});
    current.on("status", (status: StatusObject) => this.ended(current, status, acceptedAt));
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.call?.cancel();
    this.client.close();
  }

  private accepted(id: string): void {
    if (this.logged !== "registered" || id !== this.coreInstanceId) {
      this.log.info({ event: "registered", core_instance_id: id }, `registered with core ${id} at ${this.options.coreAddress}`);
    }
    this.logged = "registered";
    this.coreInstanceId = id;
  }

  /** The call ended (core ended the lease, or it never got one): register again after the backoff. */
  private ended(current: ClientReadableStream<RegisterResponse>, status: StatusObject, acceptedAt: number | undefined): void {
    if (this.stopped || this.call !== current) return;
    this.call = undefined;
    if (acceptedAt !== undefined) this.options.onLease?.("lost");
    // A lease that held for a while earns a quick return; one that core keeps
    // ending at once (e.g. a duplicate replica id) backs off like a failure.
    const held = acceptedAt !== undefined && Date.now() - acceptedAt >= this.backoff.maxMs;
    this.failures = held ? 0 : this.failures + 1;
    const reason = registrationFailure(status, this.options.tls !== undefined);
    if (this.logged !== "retrying") {
      const human =
        this.logged === "registered"
          ? `lost registration with core ${this.coreInstanceId} (${reason}); registering again`
          : `cannot register with core at ${this.options.coreAddress} (${reason}); retrying with backoff`;
      this.log.warn({ event: "registration_lost", reason }, human);
      this.logged = "retrying";
    }
    this.retryTimer = setTimeout(() => this.register(), delayFor(this.failures, this.backoff));
    this.retryTimer.unref();
  }
}

/** Capped exponential backoff with jitter: initial·2^(n-1) up to max, ±jitter. */
export function delayFor(failures: number, backoff: Backoff): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (1 - backoff.jitter + 2 * backoff.jitter * Math.random()));
}

/** Why a registration ended, in words an operator can act on: TLS problems say which side's certificate to check. */
export function registrationFailure(status: Pick<StatusObject, "code" | "details">, tls: boolean): string {
  const details = status.details || `status ${status.code}`;
  if (/certificate|self.signed|unable to verify|CERT_|SSL|alert|handshake/i.test(details)) {
    return `TLS with core failed: ${details} (core's certificate must be signed by this sidecar's --tls-ca, and this sidecar's by core's)`;
  }
  if (/Failed to connect|Connection dropped|ECONNRESET|socket hang up|Protocol error/i.test(details)) {
    return tls
      ? `${details} (if core is up, it may have refused this sidecar's certificate: its log says why)`
      : `${details} (if core is up and serves TLS, this sidecar needs --tls-ca)`;
  }
  return details;
}
