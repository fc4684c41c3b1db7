// Which engine adapter a sidecar runs, built from its config: the mock, the
// embedded llama.cpp, or the HTTP adapter of an engine server (optionally
// started and supervised). Real adapters report the replica's measured
// hardware (device mask, VRAM); the mock reports what it is told.
import { availableParallelism } from "node:os";
import { engines } from "../../contracts/enums.js";
import { Engine, type Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { localPathOf, parseModelRef } from "../../contracts/model-ref.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { workerErrorKinds, type EngineAdapter } from "../engine-adapter.js";
import type { HttpEngineOptions } from "../http/engine-options.js";
import { createLlamaCppAdapter } from "../llamacpp/llamacpp-adapter.js";
import { defaultThreads, EmbeddedLlamaAdapter } from "../llamacpp-embedded/embedded-adapter.js";
import { MOCK_DEFAULTS, MockEngine } from "../mock/mock-engine.js";
import { createOpenAiAdapter } from "../openai/openai-adapter.js";
import { EngineSupervisor } from "../supervisor/engine-supervisor.js";
import { HEALTH_PATH, httpProbe, SupervisedAdapter } from "../supervisor/supervised-adapter.js";
import { createTgiAdapter } from "../tgi/tgi-adapter.js";
import { createTritonAdapter } from "../triton/triton-adapter.js";
import { createVllmAdapter } from "../vllm/vllm-adapter.js";
import { applyEngineEnvironment } from "../hardware/device-mask.js";
import { HardwareAwareAdapter } from "./hardware-aware-adapter.js";
import type { ReplicaHardware } from "./replica-hardware.js";
import { EMBEDDED_DEFAULT_CTX, knownEngines, WORKER_DEFAULTS, type WorkerConfig } from "./worker-config.js";

/** The adapter a config asks for: --adapter, else the engine's own with --engine-url, else the embedded engine for a local .gguf, else the mock. */
export function adapterNameOf(config: WorkerConfig): string {
  const engineName = config.engine ?? WORKER_DEFAULTS.engine;
  return config.adapter ?? (config.engineUrl ? engineName : isLocalGguf(config.modelRef) ? "llamacpp-embedded" : "mock");
}

/**
 * The engine adapter for this sidecar. `hardware` is the replica's measured
 * hardware (none for the mock, whose device mask and memory are simulated).
 */
export function createAdapter(config: WorkerConfig, logger: Logger, hardware?: ReplicaHardware): EngineAdapter {
  const adapter = createEngineAdapter(config, logger, hardware);
  return hardware ? new HardwareAwareAdapter(adapter, hardware) : adapter;
}

/**
 * The engine adapter for this sidecar: the mock, or the real adapter for the
 * engine at --engine-url, optionally with the engine process started and
 * supervised (--engine-cmd).
 */
function createEngineAdapter(config: WorkerConfig, logger: Logger, hardware: ReplicaHardware | undefined): EngineAdapter {
  const engineName = config.engine ?? WORKER_DEFAULTS.engine;
  const engine = engines.parse(engineName);
  if (engine === undefined) throw new Error(`unknown engine "${engineName}" (known: ${knownEngines().join(", ")})`);
  const adapterName = adapterNameOf(config);
  checkWorkloads(adapterName, config.workloads);
  if (adapterName === "mock") return createMock(config, engine);
  if (adapterName === "llamacpp-embedded") return createEmbedded(config, engine, logger, hardware);
  if (!config.engineUrl) throw new Error(`--engine-url is required for the ${adapterName} adapter`);
  if (!config.modelRef)
    throw new Error(`--model is required with a real engine: the model_ref tasks will ask for (e.g. hf:org/repo/file.gguf)`);
  const opts = dropUndefined({
    baseUrl: config.engineUrl,
    modelRef: config.modelRef,
    engineModel: config.engineModel,
    apiKey: config.engineApiKey,
    slots: config.mock?.slots,
    workloads: config.workloads,
  }) as HttpEngineOptions;
  const adapter = realAdapter(adapterName, opts, config);
  if (!config.engineCmd) return adapter;
  const supervisor = new EngineSupervisor({
    command: config.engineCmd,
    // The engine sees only the replica's devices (CUDA_VISIBLE_DEVICES or its ROCm equivalent).
    env: hardware?.engineEnvironment(),
    probe: httpProbe(config.engineUrl, HEALTH_PATH[adapterName] ?? "/health"),
    logger: logger.child({ engine_process: adapterName }),
  });
  return new SupervisedAdapter(adapter, supervisor);
}

function realAdapter(name: string, opts: HttpEngineOptions, config: WorkerConfig): EngineAdapter {
  switch (name) {
    case "llamacpp":
      return createLlamaCppAdapter(opts);
    case "vllm":
      return createVllmAdapter(opts);
    case "tgi":
      return createTgiAdapter(opts);
    case "triton":
      return createTritonAdapter({ ...opts, ...(config.mock?.ctxMax ? { ctxMax: config.mock.ctxMax } : {}) });
    case "openai":
      return createOpenAiAdapter(opts);
    default:
      throw new Error(`unknown adapter "${name}"`);
  }
}

/** Adapters whose engine serves what --workloads says; the others know what they serve (completion, or the model's own). */
const WORKLOAD_ADAPTERS = ["llamacpp", "vllm"];

function checkWorkloads(adapterName: string, workloads: Workload[] | undefined): void {
  if (!workloads || WORKLOAD_ADAPTERS.includes(adapterName)) return;
  throw new Error(`--workloads is for the ${WORKLOAD_ADAPTERS.join(" and ")} adapters; the ${adapterName} adapter knows what it serves`);
}

/** A model_ref naming a GGUF file on this machine: what the embedded engine runs. */
function isLocalGguf(modelRef: string | undefined): boolean {
  if (!modelRef) return false;
  try {
    const path = localPathOf(parseModelRef(modelRef), process.cwd());
    return path !== undefined && path.toLowerCase().endsWith(".gguf");
  } catch {
    return false;
  }
}

function createEmbedded(config: WorkerConfig, engine: Engine, logger: Logger, hardware: ReplicaHardware | undefined): EngineAdapter {
  if (engine !== Engine.ENGINE_LLAMACPP)
    throw new Error(`the llamacpp-embedded adapter serves the llamacpp engine family, not ${engines.name(engine)}`);
  if (!config.modelRef) throw new Error("--model is required with the embedded engine: a GGUF file, e.g. file:/models/qwen.gguf");
  // llama.cpp runs in this process: its GPU backend reads the device selection from this process's environment when it loads.
  if (hardware) applyEngineEnvironment(process.env, hardware.engineEnvironment());
  return new EmbeddedLlamaAdapter(
    {
      modelRef: config.modelRef,
      slots: config.mock?.slots ?? MOCK_DEFAULTS.slots,
      ctx: config.mock?.ctxMax ?? EMBEDDED_DEFAULT_CTX,
      threads: config.embedded?.threads ?? defaultThreads(availableParallelism()),
      gpu: config.embedded?.gpu ?? "auto",
      gpuLayers: config.embedded?.gpuLayers ?? "auto",
      deviceMask: config.deviceMask ?? "",
      baseDir: process.cwd(),
    },
    logger.child({ adapter: "llamacpp-embedded" }),
  );
}

function createMock(config: WorkerConfig, engine: Engine): EngineAdapter {
  const { failKind, ...mock } = config.mock ?? {};
  const kind = failKind === undefined ? undefined : workerErrorKinds.parse(failKind);
  if (failKind !== undefined && kind === undefined) {
    throw new Error(`unknown mock fail kind "${failKind}" (known: ${workerErrorKinds.names().join(", ")})`);
  }
  return new MockEngine(
    dropUndefined({
      ...mock,
      failKind: kind,
      engine,
      modelRef: config.modelRef,
      servesAnyModel: config.servesAnyModel,
      deviceMask: config.deviceMask,
    }),
  );
}

/** Keeps explicit `undefined`s from overriding defaults in an object spread. */
function dropUndefined<T extends object>(o: T): Partial<{ [K in keyof T]: Exclude<T[K], undefined> }> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<{ [K in keyof T]: Exclude<T[K], undefined> }>;
}
