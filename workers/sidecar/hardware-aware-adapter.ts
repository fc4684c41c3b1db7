// An engine adapter whose Info tells the truth about its hardware: the
// replica's device mask and the free and total memory of those devices only
// (or RAM on a CPU replica), which placement ranks by. Everything else is the
// wrapped adapter's.
import type { SubmitRequest, WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import type { EngineAdapter, EngineInfo, GenerationResult, GenerationSink } from "../engine-adapter.js";
import type { ReplicaHardware } from "./replica-hardware.js";

export class HardwareAwareAdapter implements EngineAdapter {
  constructor(
    private readonly inner: EngineAdapter,
    private readonly hardware: ReplicaHardware,
  ) {}

  info(): EngineInfo {
    const memory = this.hardware.memory();
    return {
      ...this.inner.info(),
      deviceMask: this.hardware.mask.text,
      vramTotalBytes: memory.totalBytes,
      vramFreeBytes: memory.freeBytes,
    };
  }

  health(): WorkerHealth {
    return this.inner.health();
  }

  onHealthChange(listener: (health: WorkerHealth) => void): () => void {
    return this.inner.onHealthChange(listener);
  }

  slotsTotal(): number {
    return this.inner.slotsTotal();
  }

  kvCacheUsageRatio(): number | undefined {
    return this.inner.kvCacheUsageRatio?.();
  }

  generate(request: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    return this.inner.generate(request, signal, sink);
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  async stop(): Promise<void> {
    this.hardware.stop();
    await this.inner.stop();
  }

  // Optional capabilities stay optional: present exactly when the wrapped adapter has them.
  get evictSession(): EngineAdapter["evictSession"] {
    return this.inner.evictSession?.bind(this.inner);
  }

  get loadModel(): EngineAdapter["loadModel"] {
    return this.inner.loadModel?.bind(this.inner);
  }

  get loadState(): EngineAdapter["loadState"] {
    return this.inner.loadState?.bind(this.inner);
  }
}
