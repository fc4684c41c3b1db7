import { EventEmitter } from "node:events";
import { credentials, Metadata, type ClientReadableStream } from "@grpc/grpc-js";
import type { RegisterRequest } from "../../contracts/gen/llama_orch/v1/registry.js";
import {
  WorkerServiceClient,
  type InfoResponse,
  type LoadModelResponse,
  type WatchHealthResponse,
  type WatchPropsResponse,
  type WorkerHealth,
  type WorkerProps,
} from "../../contracts/gen/llama_orch/v1/worker.js";
import { CLIENT_CHANNEL_OPTIONS } from "../../contracts/runtime/grpc-server.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import type { ReplicaSnapshot } from "../placement/placement.js";

/** What a sidecar told core about itself when it registered. */
export type ReplicaRegistration = RegisterRequest;

const WATCH_RETRY_MS = 250;

/**
 * Core's view of one registered sidecar: a gRPC client to it, plus health,
 * props and info kept current by the sidecar's own watch streams. Emits
 * "change" whenever something placement cares about moved.
 */
export class Replica extends EventEmitter {
  readonly client: WorkerServiceClient;
  health: WorkerHealth = { live: false, ready: false, lastError: "connecting" };
  props: WorkerProps = { slotsTotal: 0, slotsFree: 0, requestsWaiting: 0 };
  info: InfoResponse | undefined;
  /** Tasks core is running here now; core's own count, so it never races props. */
  active = 0;
  private closed = false;
  private readonly watches: ClientReadableStream<unknown>[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    readonly registration: ReplicaRegistration,
    private readonly logger: Logger,
  ) {
    super();
    this.client = new WorkerServiceClient(registration.address, credentials.createInsecure(), {
      ...CLIENT_CHANNEL_OPTIONS,
      "grpc.max_concurrent_streams": 10_000,
    });
    this.props.slotsTotal = registration.slotsTotal;
    this.props.slotsFree = registration.slotsTotal;
  }

  get id(): string {
    return this.registration.replicaId;
  }

  get poolId(): string {
    return this.registration.poolId;
  }

  get engineVersion(): string {
    return this.info?.engineVersion ?? "";
  }

  get slotsTotal(): number {
    return this.props.slotsTotal || this.registration.slotsTotal;
  }

  get freeSlots(): number {
    return Math.max(0, this.slotsTotal - this.active);
  }

  /** Ready, described, and not closed: may receive work when a slot is free. */
  get isReady(): boolean {
    return !this.closed && this.health.live && this.health.ready && this.info !== undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** A plain copy of what placement needs; placement never sees the live object. */
  snapshot(draining: boolean, reloading = false): ReplicaSnapshot {
    const info = this.info;
    return {
      replicaId: this.id,
      poolId: this.poolId,
      engine: this.registration.engine,
      modelRef: this.modelRef,
      servesAnyModel: this.registration.servesAnyModel,
      // A pool mid-reload is not Ready until every replica has the new model (or all rolled back).
      ready: this.isReady && !reloading,
      draining,
      ctxMax: info?.ctxMax ?? 0,
      workloads: info?.workloads ?? [],
      deviceMask: info?.deviceMask ?? "",
      vramFreeBytes: info?.vramFreeBytes ?? 0,
      activeSlots: this.active,
      slotsTotal: this.slotsTotal,
      features: info?.features ?? {},
    };
  }

  /** The model it serves now: what it last reported, which a reload changes. */
  get modelRef(): string {
    return this.info?.modelRef || this.registration.modelRef;
  }

  servesModel(modelRef: string): boolean {
    return this.registration.servesAnyModel || this.modelRef === modelRef;
  }

  /** Asks the sidecar to switch models; resolves once it serves the new one, with its Info refreshed. */
  loadModel(modelRef: string, timeoutMs: number): Promise<LoadModelResponse> {
    return new Promise((resolve, reject) => {
      this.client.loadModel({ modelRef }, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) {
          reject(new Error(err.details || err.message));
          return;
        }
        this.client.info({}, (infoErr, info) => {
          if (!infoErr && !this.closed) {
            this.info = info;
            this.emit("change");
          }
          resolve(res);
        });
      });
    });
  }

  start(): void {
    this.fetchInfo();
    this.watch("health", () => this.client.watchHealth({}), (m: WatchHealthResponse) => {
      if (m.health) this.health = m.health;
    });
    this.watch("props", () => this.client.watchProps({}), (m: WatchPropsResponse) => {
      if (m.props) this.props = m.props;
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.health = { live: false, ready: false, lastError: "deregistered" };
    for (const t of this.timers) clearTimeout(t);
    for (const w of this.watches) w.cancel();
    this.client.close();
    this.emit("change");
  }

  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  private fetchInfo(): void {
    this.client.info({}, (err, info) => {
      if (this.closed) return;
      if (err) {
        this.later(() => this.fetchInfo(), WATCH_RETRY_MS);
        return;
      }
      this.info = info;
      this.emit("change");
    });
  }

  /** Keeps one watch stream open for as long as the replica is registered. */
  private watch<T>(what: string, open: () => ClientReadableStream<T>, apply: (m: T) => void): void {
    const call = open();
    this.watches.push(call as ClientReadableStream<unknown>);
    let failed = false;
    const retry = (reason: string): void => {
      if (failed || this.closed) return;
      failed = true;
      this.watches.splice(this.watches.indexOf(call as ClientReadableStream<unknown>), 1);
      this.health = { live: false, ready: false, lastError: `${what} watch lost: ${reason}` };
      this.emit("change");
      this.logger.warn({ replica_id: this.id, pool_id: this.poolId, reason }, `${what} watch lost`);
      this.later(() => this.watch(what, open, apply), WATCH_RETRY_MS);
    };
    call.on("data", (m: T) => {
      apply(m);
      this.emit("change");
    });
    call.on("error", (e: Error) => retry(e.message));
    call.on("end", () => retry("stream ended"));
  }
}
