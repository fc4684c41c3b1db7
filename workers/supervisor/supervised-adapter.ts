import type { SubmitRequest, WorkerHealth } from "../../contracts/gen/llama_orch/v1/worker.js";
import { ChangeListeners } from "../change-listeners.js";
import type { EngineAdapter, EngineInfo, GenerationResult, GenerationSink, LoadModelOptions } from "../engine-adapter.js";
import { EngineHttp } from "../http/engine-http.js";
import type { ProbeResult } from "../engine/health-poller.js";
import type { EngineSupervisor } from "./engine-supervisor.js";

/** The health endpoint each engine family answers while it lives. */
export const HEALTH_PATH: Record<string, string> = {
  llamacpp: "/health",
  vllm: "/health",
  tgi: "/health",
  triton: "/v2/health/ready",
  openai: "/v1/models",
};

/** A probe for the supervisor: 200 ready, 503 loading, 429/408 busy, anything else down. */
export function httpProbe(baseUrl: string, path: string): (signal: AbortSignal) => Promise<ProbeResult> {
  const http = new EngineHttp({
    baseUrl,
    retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
    connectTimeoutMs: 2_000,
    headersTimeoutMs: 3_000,
  });
  return async (signal) => {
    const res = await http.get(path, { signal });
    if (res.status >= 200 && res.status < 300) return { outcome: "ready" };
    if (res.status === 429 || res.status === 408) return { outcome: "busy" };
    if (res.status === 503) return { outcome: "loading", detail: `${path} answered 503` };
    return { outcome: "down", detail: `${path} answered ${res.status}` };
  };
}

/**
 * An adapter whose engine process the sidecar starts and supervises: Ready
 * only when the supervisor has the process up (preload done) and the
 * adapter's own health agrees; the supervisor's last error (exit code, stderr
 * tail, circuit open) shows in health while the process is down.
 */
export class SupervisedAdapter implements EngineAdapter {
  private readonly changes = new ChangeListeners<WorkerHealth>();
  private readonly unsubscribe: (() => void)[] = [];
  readonly evictSession?: (sessionId: string) => Promise<boolean>;
  readonly loadModel?: (modelRef: string, options?: LoadModelOptions) => Promise<void>;

  constructor(
    private readonly inner: EngineAdapter,
    private readonly supervisor: EngineSupervisor,
  ) {
    if (inner.evictSession) this.evictSession = (id) => inner.evictSession!(id);
    if (inner.loadModel) this.loadModel = (ref, options) => inner.loadModel!(ref, options);
    const emit = () => this.changes.emit(this.health());
    this.unsubscribe.push(supervisor.onHealthChange(emit), inner.onHealthChange(emit));
  }

  info(): EngineInfo {
    return this.inner.info();
  }

  health(): WorkerHealth {
    const process = this.supervisor.health();
    return process.ready ? this.inner.health() : process;
  }

  onHealthChange(listener: (h: WorkerHealth) => void): () => void {
    return this.changes.add(listener);
  }

  slotsTotal(): number {
    return this.inner.slotsTotal();
  }

  kvCacheUsageRatio(): number | undefined {
    return this.inner.kvCacheUsageRatio?.();
  }

  generate(req: SubmitRequest, signal: AbortSignal, sink: GenerationSink): Promise<GenerationResult> {
    return this.inner.generate(req, signal, sink);
  }

  async start(): Promise<void> {
    await this.supervisor.start();
    await this.inner.start();
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribe) u();
    await this.inner.stop();
    await this.supervisor.stop();
  }
}
