import { EventEmitter } from "node:events";
import { Metadata, status as GrpcStatus, type ClientReadableStream } from "@grpc/grpc-js";
import type { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import type { RegisterRequest } from "../../contracts/gen/llama_orch/v1/registry.js";
import {
  WorkerServiceClient,
  type InfoResponse,
  type LoadModelResponse,
  type WatchHealthResponse,
  type WatchPropsResponse,
  type WorkerHealth,
  type WorkerLoadState,
  type WorkerProps,
} from "../../contracts/gen/llama_orch/v1/worker.js";
import { errorDetailOf } from "../../contracts/runtime/error-status.js";
import { dialWith, type Dial } from "../../contracts/runtime/dial.js";
import { CLIENT_CHANNEL_OPTIONS } from "../../contracts/runtime/grpc-server.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { publicText } from "../../contracts/runtime/public-text.js";
import type { ReplicaSnapshot } from "../placement/placement.js";
import { SlotLease } from "./slot-lease.js";

/** What a sidecar told core about itself when it registered. */
export type ReplicaRegistration = RegisterRequest;

const WATCH_RETRY_MS = 250;
const CANCEL_DEADLINE_MS = 5_000;

/** Plaintext, no key: how core dials sidecars when nothing is configured (and how tests build replicas). */
const PLAIN_DIAL = dialWith({ channel: { ...CLIENT_CHANNEL_OPTIONS, "grpc.max_concurrent_streams": 10_000 } });

/**
 * A LoadModel the sidecar refused: its sentence, and the typed reason it
 * attached in the standard trailer, if any (UNTRUSTED_ARTIFACT: the model's
 * bytes are not the expected digest).
 */
export class ModelLoadError extends Error {
  constructor(
    message: string,
    readonly code: ErrorCode | undefined,
  ) {
    super(message);
    this.name = "ModelLoadError";
  }
}

/**
 * Core's view of one registered sidecar: a gRPC client to it, plus health,
 * props and info kept current by the sidecar's own watch streams. Emits
 * "change" whenever something placement cares about moved. Only the replica
 * itself changes its state; core takes a slot through `claimSlot`.
 */
export class Replica extends EventEmitter {
  readonly client: WorkerServiceClient;
  private currentHealth: WorkerHealth = { live: false, ready: false, lastError: "connecting" };
  private currentProps: WorkerProps = { slotsTotal: 0, slotsFree: 0, requestsWaiting: 0 };
  private currentInfo: InfoResponse | undefined;
  /** What the sidecar last reported beside its health: load progress, and whether a Submit wakes its model. */
  private currentLoad: WorkerLoadState | undefined;
  /**
   * False from the moment the engine turns Ready until its Info was read
   * again: what an engine serves (ctx, workloads, digest) may be known only
   * once its model is loaded, and placement must not use the guess from before.
   */
  private infoCurrent = false;
  private infoGeneration = 0;
  /** Slots core holds leases on; core's own count, so it never races props. */
  private leasedSlots = 0;
  private closed = false;
  private readonly watches: ClientReadableStream<unknown>[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    readonly registration: ReplicaRegistration,
    private readonly logger: Logger,
    dial: Dial = PLAIN_DIAL,
  ) {
    super();
    this.client = new WorkerServiceClient(registration.address, dial.credentials, dial.options);
    this.currentProps.slotsTotal = registration.slotsTotal;
    this.currentProps.slotsFree = registration.slotsTotal;
  }

  /** What the sidecar last reported on WatchHealth (or why core lost track of it). */
  get health(): Readonly<WorkerHealth> {
    return this.currentHealth;
  }

  /** The sidecar's load state as last reported with its health; undefined when it reported none (or core lost track of it). */
  get load(): Readonly<WorkerLoadState> | undefined {
    return this.currentLoad;
  }

  /** What the sidecar last reported on WatchProps. */
  get props(): Readonly<WorkerProps> {
    return this.currentProps;
  }

  /** The sidecar's Info: engine, model and features; undefined until it first answered. */
  get info(): Readonly<InfoResponse> | undefined {
    return this.currentInfo;
  }

  /** Tasks core is running here now. */
  get activeSlots(): number {
    return this.leasedSlots;
  }

  /**
   * A lease on one slot, or undefined when every slot is taken. The count
   * changes here and in the lease's release only.
   */
  claimSlot(): SlotLease | undefined {
    if (this.leasedSlots >= this.slotsTotal) return undefined;
    this.leasedSlots++;
    return new SlotLease(() => this.leasedSlots--);
  }

  /**
   * A lease for a generation the sidecar already runs (or ran) for core, which
   * core takes back after a restart: counted even past the slots, because it
   * is there whatever core counts (and one that already ended uses none).
   */
  claimHeldSlot(): SlotLease {
    this.leasedSlots++;
    return new SlotLease(() => this.leasedSlots--);
  }

  get id(): string {
    return this.registration.replicaId;
  }

  get poolId(): string {
    return this.registration.poolId;
  }

  get engineVersion(): string {
    return this.currentInfo?.engineVersion ?? "";
  }

  get slotsTotal(): number {
    return this.currentProps.slotsTotal || this.registration.slotsTotal;
  }

  get freeSlots(): number {
    return Math.max(0, this.slotsTotal - this.leasedSlots);
  }

  /** Ready, described, and not closed: may receive work when a slot is free. */
  get isReady(): boolean {
    return !this.closed && this.currentHealth.live && this.currentHealth.ready && this.currentInfo !== undefined && this.infoCurrent;
  }

  /**
   * Not ready because its model was unloaded after idling (--model-ttl), and
   * a Submit loads it again: placement may send work here, after the ready
   * replicas, and that work waits for the load.
   */
  get wakesOnSubmit(): boolean {
    return (
      !this.closed &&
      this.currentHealth.live &&
      !this.currentHealth.ready &&
      this.currentLoad?.wakesOnSubmit === true &&
      this.currentInfo !== undefined
    );
  }

  /** Live and not ready while it reports load progress: provisioning or loading a model (for a reload, or woken by a task). */
  get isLoadingModel(): boolean {
    return !this.closed && this.currentHealth.live && !this.currentHealth.ready && this.currentLoad?.progress !== undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** A plain copy of what placement needs; placement never sees the live object. */
  snapshot(draining: boolean, reloading = false): ReplicaSnapshot {
    const info = this.currentInfo;
    return {
      replicaId: this.id,
      poolId: this.poolId,
      engine: this.registration.engine,
      modelRef: this.modelRef,
      servesAnyModel: this.registration.servesAnyModel,
      // A pool mid-reload is not Ready until every replica has the new model (or all rolled back).
      ready: this.isReady && !reloading,
      wakesOnSubmit: this.wakesOnSubmit && !reloading,
      draining,
      ctxMax: info?.ctxMax ?? 0,
      workloads: info?.workloads ?? [],
      deviceMask: info?.deviceMask ?? "",
      // Props carry the measured figure as it moves; Info only what it was when last read.
      vramFreeBytes: this.currentProps.vramFreeBytes ?? info?.vramFreeBytes ?? 0,
      activeSlots: this.leasedSlots,
      slotsTotal: this.slotsTotal,
      features: info?.features ?? {},
    };
  }

  /** The model it serves now: what it last reported, which a reload changes. */
  get modelRef(): string {
    return this.currentInfo?.modelRef || this.registration.modelRef;
  }

  servesModel(modelRef: string): boolean {
    return this.registration.servesAnyModel || this.modelRef === modelRef;
  }

  /**
   * Asks the sidecar to switch models, its bytes to match `expectedDigest`
   * ("sha256:<hex>", or "" for the source's own); resolves once it serves the
   * new one, with its Info refreshed; rejects with a ModelLoadError.
   */
  loadModel(modelRef: string, timeoutMs: number, expectedDigest = ""): Promise<LoadModelResponse> {
    return new Promise((resolve, reject) => {
      this.client.loadModel({ modelRef, expectedDigest }, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) {
          // The refusal reaches pool health; a transport failure's details name the sidecar's address.
          const detail = err.details || err.message;
          this.logger.warn(
            { replica_id: this.id, pool_id: this.poolId, model_ref: modelRef, detail },
            `load of ${modelRef} failed: ${detail}`,
          );
          reject(new ModelLoadError(publicText(detail), errorDetailOf(err)?.code));
          return;
        }
        this.client.info({}, (infoErr, info) => {
          if (!infoErr && !this.closed) {
            this.currentInfo = info;
            this.emit("change");
          }
          resolve(res);
        });
      });
    });
  }

  /**
   * Whether the sidecar still answers within `timeoutMs`: any answer, even a
   * refusal, means a process is there; only silence or an unreachable address
   * means its lease is as good as gone.
   */
  answers(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.client.health({}, new Metadata(), { deadline: Date.now() + timeoutMs }, (err) => {
        resolve(!err || (err.code !== GrpcStatus.UNAVAILABLE && err.code !== GrpcStatus.DEADLINE_EXCEEDED));
      });
    });
  }

  /**
   * Best-effort Cancel RPC: core's Submits are detachable (a call that
   * breaks leaves its generation running on the sidecar, held for a
   * Resume), so a generation core gives up on is stopped by name as well.
   * `done` runs once the sidecar answered (or could not be asked).
   */
  cancelGeneration(taskId: string, done: () => void = () => {}): void {
    if (this.closed) {
      done();
      return;
    }
    this.client.cancel({ taskId }, new Metadata(), { deadline: Date.now() + CANCEL_DEADLINE_MS }, () => done());
  }

  start(): void {
    this.fetchInfo();
    this.watch(
      "health",
      () => this.client.watchHealth({}),
      (m: WatchHealthResponse) => {
        if (!m.health) return;
        const becameReady = m.health.ready && !this.currentHealth.ready;
        // Pool health shows it to clients; sidecars send public text, one from another release may not.
        this.currentHealth = { ...m.health, lastError: publicText(m.health.lastError) };
        this.currentLoad = m.load;
        if (becameReady) {
          this.infoCurrent = false;
          this.fetchInfo();
        }
      },
    );
    this.watch(
      "props",
      () => this.client.watchProps({}),
      (m: WatchPropsResponse) => {
        if (m.props) this.currentProps = m.props;
      },
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.currentHealth = { live: false, ready: false, lastError: "deregistered" };
    this.currentLoad = undefined;
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

  /** Reads Info; only the newest read's answer counts (an older one may predate a model load). */
  private fetchInfo(): void {
    const generation = ++this.infoGeneration;
    this.client.info({}, (err, info) => {
      if (this.closed || generation !== this.infoGeneration) return;
      if (err) {
        this.later(() => this.fetchInfo(), WATCH_RETRY_MS);
        return;
      }
      this.currentInfo = info;
      this.infoCurrent = true;
      this.emit("change");
    });
  }

  /** Keeps one watch stream open for as long as the replica is registered. */
  private watch<T>(what: string, open: () => ClientReadableStream<T>, apply: (m: T) => void): void {
    const call = open();
    this.watches.push(call);
    let failed = false;
    const retry = (reason: string): void => {
      if (failed || this.closed) return;
      failed = true;
      this.watches.splice(this.watches.indexOf(call), 1);
      this.currentHealth = { live: false, ready: false, lastError: `${what} watch lost: ${publicText(reason)}` };
      this.currentLoad = undefined;
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
