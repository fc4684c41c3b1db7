// One engine instance the model switcher runs: an adapter started on one
// model, and the generations running on it, so that it is stopped only once
// they have ended (a replaced or unloaded engine lets its work finish).
import type { SubmitRequest, WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import type { EngineAdapter, GenerationResult, GenerationSink } from "../engine-adapter.js";
import type { PreparedModel } from "./model-preparer.js";

export class EngineInstance {
  private running = 0;
  private idleWaiters: (() => void)[] = [];
  private unwatch: (() => void) | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly adapter: EngineAdapter,
    readonly model: PreparedModel,
  ) {}

  /** Generations running on it now. */
  get busy(): number {
    return this.running;
  }

  async generate(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    this.running++;
    try {
      return await this.adapter.generate(request, signal, sink);
    } finally {
      this.running--;
      if (this.running === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  /** Resolves once no generation runs on it (at once when none does). */
  whenIdle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Hears its health changes until it is stopped. */
  watch(listener: (health: WorkerHealth) => void): void {
    this.unwatch?.();
    this.unwatch = this.adapter.onHealthChange(listener);
  }

  /** Stops it now (running generations end with RESET); once, however often called. */
  stop(): Promise<void> {
    this.unwatch?.();
    this.unwatch = undefined;
    this.stopping ??= this.adapter.stop();
    return this.stopping;
  }

  /** Stops it once its running generations have ended. */
  async retire(): Promise<void> {
    await this.whenIdle();
    await this.stop();
  }
}
