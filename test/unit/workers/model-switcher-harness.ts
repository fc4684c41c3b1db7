// What the model switcher's tests share: engine instances that record what
// happens to them (created, started, stopped, generations running) and whose
// start a test can hold or fail, a scripted preparer and plan, and a
// switcher over them.
import { Engine, StopReason, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type WorkerHealth } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { ChangeListeners } from "../../../workers/change-listeners.js";
import { WorkerFailure, type EngineAdapter, type EngineInfo } from "../../../workers/engine-adapter.js";
import type { ProvisionProgress } from "../../../workers/provision/progress.js";
import type { PrepareOptions, PreparedModel } from "../../../workers/sidecar/model-preparer.js";
import { ModelSwitcher, type EngineInstances } from "../../../workers/sidecar/model-switcher.js";
import type { SwitchAction } from "../../../workers/sidecar/switch-plan.js";
import { quietLogger } from "../../support/log-capture.js";

export const INFO: EngineInfo = {
  engine: Engine.ENGINE_LLAMACPP,
  adapter: "fake",
  engineVersion: "fake-1",
  modelRef: "",
  modelDigest: "",
  ctxMax: 4096,
  workloads: [Workload.WORKLOAD_COMPLETION],
  deviceMask: "",
  vramTotalBytes: 0,
  vramFreeBytes: 0,
  servesAnyModel: false,
  features: {},
};

/** One engine instance: its start waits for `release()` when held, generations wait for `finish()`. */
export class FakeInstance implements EngineAdapter {
  healthNow: WorkerHealth = { live: false, ready: false, lastError: "not started" };
  /** What the switcher gave create() for the engine to report its file's load with. */
  onLoadProgress: ((bytesDone: number, bytesTotal: number) => void) | undefined;
  readonly generations: { finish(): void }[] = [];
  stopped = false;
  private readonly changes = new ChangeListeners<WorkerHealth>();
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => {};

  constructor(
    readonly model: PreparedModel,
    readonly log: string[],
    readonly failStart: string | undefined,
    hold: boolean,
  ) {
    if (hold) this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.open();
  }

  info = (): EngineInfo => ({ ...INFO, modelRef: this.model.ref });
  health = (): WorkerHealth => this.healthNow;
  onHealthChange = (listener: (h: WorkerHealth) => void) => this.changes.add(listener);
  slotsTotal = () => 2;

  async start(): Promise<void> {
    this.log.push(`start ${this.model.ref}`);
    this.set({ live: true, ready: false, lastError: "starting" });
    await this.gate;
    if (this.stopped) throw new Error("stopped while starting");
    if (this.failStart) {
      this.set({ live: false, ready: false, lastError: this.failStart });
      throw new Error(this.failStart);
    }
    this.set({ live: true, ready: true, lastError: "" });
    this.log.push(`ready ${this.model.ref}`);
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- stopping is asynchronous by contract
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.open();
    this.log.push(`stop ${this.model.ref}`);
    this.set({ live: false, ready: false, lastError: "stopped" });
  }

  generate: EngineAdapter["generate"] = (_request, signal, sink) => {
    if (!this.healthNow.ready) return Promise.reject(new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_RESET, "not running"));
    this.log.push(`generate ${this.model.ref}`);
    sink.started(1);
    return new Promise((resolve) => {
      const finish = () => resolve({ stopReason: StopReason.STOP_REASON_MAX_TOKENS });
      this.generations.push({ finish });
      signal.addEventListener("abort", finish, { once: true });
    });
  };

  set(health: WorkerHealth): void {
    this.healthNow = health;
    this.changes.emit(health);
  }
}

export interface SwitcherWorld {
  switcher: ModelSwitcher;
  /** What happened, in order: "prepare X", "create X", "start X", "ready X", "stop X", "generate X". */
  log: string[];
  instances: FakeInstance[];
  /** Instances of this ref, in creation order. */
  of(ref: string): FakeInstance[];
  /** Per ref: what the plan says (default "beside", "start" when nothing runs). */
  plans: Map<string, SwitchAction>;
  /** Per ref: the next instances' start fails with this message. */
  failStarts: Map<string, string>;
  /** Per ref: the preparer fails with this error. */
  prepareFailures: Map<string, Error>;
  /** Refs whose next instance start is held until released. */
  hold: Set<string>;
  /** Progress reports the preparer gives per ref before it resolves. */
  progress: Map<string, ProvisionProgress[]>;
  /** Every (health, load state) the switcher's listeners heard. */
  heard: { health: WorkerHealth; load: ReturnType<ModelSwitcher["loadState"]> }[];
}

export function switcherWorld(
  options: { modelRef?: string; ttlMs?: number; loadsFiles?: boolean; besideBlocked?: string } = {},
): SwitcherWorld {
  const log: string[] = [];
  const created: FakeInstance[] = [];
  const plans = new Map<string, SwitchAction>();
  const failStarts = new Map<string, string>();
  const prepareFailures = new Map<string, Error>();
  const hold = new Set<string>();
  const progress = new Map<string, ProvisionProgress[]>();
  const instances: EngineInstances = {
    blank: { info: INFO, slots: 2, evicts: false },
    loadsFiles: options.loadsFiles ?? true,
    besideBlocked: options.besideBlocked,
    // eslint-disable-next-line @typescript-eslint/require-await -- creating an instance is asynchronous by contract
    create: async (model, how) => {
      log.push(`create ${model.ref}`);
      const instance = new FakeInstance(model, log, failStarts.get(model.ref), hold.has(model.ref));
      instance.onLoadProgress = how.onLoadProgress;
      created.push(instance);
      return instance;
    },
  };
  const preparer = {
    async prepare(ref: string, opts: PrepareOptions = {}): Promise<PreparedModel> {
      log.push(`prepare ${ref}`);
      for (const p of progress.get(ref) ?? []) {
        opts.onProgress?.(p);
        await new Promise((r) => setImmediate(r));
      }
      const failure = prepareFailures.get(ref);
      if (failure) throw failure;
      return { ref, path: `/cache/${ref}`, digest: `sha256:${"0".repeat(64)}`, expectedDigest: opts.expectedDigest, memory: undefined };
    },
  };
  const switcher = new ModelSwitcher({
    modelRef: options.modelRef ?? "hf:o/a/a.gguf",
    instances,
    preparer,
    plan: (next, running) => {
      const action = plans.get(next.ref) ?? (running ? "beside" : "start");
      return { action, reason: action === "refuse" ? `${next.ref} cannot fit: it needs 9 GiB but only 1 GiB is free` : `plan ${action}` };
    },
    ttlMs: options.ttlMs,
    logger: quietLogger,
  });
  const heard: SwitcherWorld["heard"] = [];
  switcher.onHealthChange((health) => heard.push({ health, load: switcher.loadState() }));
  return {
    switcher,
    log,
    instances: created,
    of: (ref) => created.filter((i) => i.model.ref === ref),
    plans,
    failStarts,
    prepareFailures,
    hold,
    progress,
    heard,
  };
}

/** Resolves once `check` holds, polling each turn of the event loop; rejects after `ms`. */
export async function until(check: () => boolean, what: string, ms = 2_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
