// Which engine adapter a sidecar runs, built from its config: the mock, the
// HTTP adapter of an engine server someone else runs, or an engine the
// sidecar runs itself (the embedded llama.cpp, or --engine-cmd processes),
// whose models the model switcher provisions, switches and unloads. Real
// adapters report the replica's measured hardware (device mask, VRAM); the
// mock reports what it is told.
import { availableParallelism } from "node:os";
import path from "node:path";
import { engines } from "../../contracts/enums.js";
import { Engine, type Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { parseModelRef } from "../../contracts/model-ref.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { workerErrorKinds, type EngineAdapter } from "../engine-adapter.js";
import type { HttpEngineOptions } from "../http/engine-options.js";
import { createLlamaCppAdapter } from "../llamacpp/llamacpp-adapter.js";
import { defaultThreads } from "../llamacpp-embedded/embedded-adapter.js";
import { MOCK_DEFAULTS, MockEngine } from "../mock/mock-engine.js";
import { createOpenAiAdapter } from "../openai/openai-adapter.js";
import { createTgiAdapter } from "../tgi/tgi-adapter.js";
import { createTritonAdapter } from "../triton/triton-adapter.js";
import { createVllmAdapter } from "../vllm/vllm-adapter.js";
import { applyEngineEnvironment } from "../hardware/device-mask.js";
import { defaultModelCacheDir } from "../provision/hub-settings.js";
import { embeddedInstances, supervisedInstances } from "./engine-instances.js";
import { HardwareAwareAdapter } from "./hardware-aware-adapter.js";
import { ModelPreparer } from "./model-preparer.js";
import { ModelSwitcher, type EngineInstances } from "./model-switcher.js";
import { planSwitch } from "./switch-plan.js";
import type { ReplicaHardware } from "./replica-hardware.js";
import { EMBEDDED_DEFAULT_CTX, knownEngines, WORKER_DEFAULTS, type WorkerConfig } from "./worker-config.js";

/**
 * The adapter a config asks for: --adapter, else the engine's own with --engine-url or --engine-cmd, else the
 * embedded engine for a GGUF model (a local file, or one to download), else the mock.
 */
export function adapterNameOf(config: WorkerConfig): string {
  const engineName = config.engine ?? WORKER_DEFAULTS.engine;
  return config.adapter ?? (config.engineUrl || config.engineCmd ? engineName : isGguf(config.modelRef) ? "llamacpp-embedded" : "mock");
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
 * The engine adapter for this sidecar: the mock, the embedded engine, the
 * real adapter for the engine at --engine-url, or, with --engine-cmd, the
 * engine processes the sidecar starts and supervises itself (behind the
 * model switcher, as the embedded engine is).
 */
function createEngineAdapter(config: WorkerConfig, logger: Logger, hardware: ReplicaHardware | undefined): EngineAdapter {
  const engineName = config.engine ?? WORKER_DEFAULTS.engine;
  const engine = engines.parse(engineName);
  if (engine === undefined) throw new Error(`unknown engine "${engineName}" (known: ${knownEngines().join(", ")})`);
  const adapterName = adapterNameOf(config);
  checkWorkloads(adapterName, config.workloads);
  const runsItsEngine = adapterName === "llamacpp-embedded" || (adapterName !== "mock" && config.engineCmd !== undefined);
  if (config.modelTtlMs !== undefined && !runsItsEngine)
    throw new Error(
      `--model-ttl needs an engine this sidecar runs (the embedded engine, or --engine-cmd); the ${adapterName} adapter's is not its to stop`,
    );
  if (adapterName === "mock") return createMock(config, engine);
  if (adapterName === "llamacpp-embedded") return createEmbedded(config, engine, logger, hardware);
  if (!config.modelRef)
    throw new Error(`--model is required with a real engine: the model_ref tasks will ask for (e.g. hf:org/repo/file.gguf)`);
  const http = dropUndefined({
    engineModel: config.engineModel,
    apiKey: config.engineApiKey,
    slots: config.mock?.slots,
    workloads: config.workloads,
  }) as Omit<HttpEngineOptions, "baseUrl" | "modelRef">;
  const createHttpAdapter = (opts: HttpEngineOptions) => realAdapter(adapterName, opts, config);
  if (!config.engineCmd) {
    if (!config.engineUrl) throw new Error(`--engine-url is required for the ${adapterName} adapter`);
    return createHttpAdapter({ ...http, baseUrl: config.engineUrl, modelRef: config.modelRef });
  }
  const { ctxPerSlot, slots } = capacityOf(config);
  const instances = supervisedInstances({
    adapterName,
    command: config.engineCmd,
    engineUrl: config.engineUrl,
    modelRef: config.modelRef,
    http,
    ctxPerSlot,
    slots,
    // The engine sees only the replica's devices (CUDA_VISIBLE_DEVICES or its ROCm equivalent).
    env: hardware?.engineEnvironment(),
    createHttpAdapter,
    logger,
  });
  return switching(config, instances, logger, hardware);
}

/** Context per slot and slots, for the fit check and the engine command: --ctx-max and --slots, or their defaults. */
function capacityOf(config: WorkerConfig): { ctxPerSlot: number; slots: number } {
  return { ctxPerSlot: config.mock?.ctxMax ?? EMBEDDED_DEFAULT_CTX, slots: config.mock?.slots ?? MOCK_DEFAULTS.slots };
}

/** The model switcher over `instances`: provisioning into --model-cache, the fit check on this replica, --model-ttl. */
function switching(config: WorkerConfig, instances: EngineInstances, logger: Logger, hardware: ReplicaHardware | undefined): EngineAdapter {
  if (!hardware) throw new Error("an engine the sidecar runs needs the replica's measured hardware (its fit check)");
  const { ctxPerSlot, slots } = capacityOf(config);
  const log = logger.child({ component: "model-switcher" });
  const preparer = new ModelPreparer({
    cacheDir: path.resolve(config.modelCacheDir ?? defaultModelCacheDir(process.env)),
    baseDir: process.cwd(),
    env: process.env,
    logger: log,
  });
  return new ModelSwitcher({
    modelRef: config.modelRef!,
    instances,
    preparer,
    plan: (next, running, besideBlocked) =>
      planSwitch({ next, running, besideBlocked, ctxPerSlot, slots, mask: hardware.mask, snapshot: hardware.snapshot() }),
    ttlMs: config.modelTtlMs,
    logger: log,
  });
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

/** A model_ref naming a GGUF file, here or to download (hf:org/repo/file.gguf, https://…/file.gguf): what the embedded engine runs. */
function isGguf(modelRef: string | undefined): boolean {
  if (!modelRef) return false;
  try {
    const ref = parseModelRef(modelRef);
    const file =
      ref.scheme === "file" ? ref.path : ref.scheme === "hf" ? ref.file : ref.scheme === "https" ? new URL(ref.url).pathname : undefined;
    return file !== undefined && file.toLowerCase().endsWith(".gguf");
  } catch {
    return false;
  }
}

function createEmbedded(config: WorkerConfig, engine: Engine, logger: Logger, hardware: ReplicaHardware | undefined): EngineAdapter {
  if (engine !== Engine.ENGINE_LLAMACPP)
    throw new Error(`the llamacpp-embedded adapter serves the llamacpp engine family, not ${engines.name(engine)}`);
  if (!config.modelRef)
    throw new Error("--model is required with the embedded engine: a GGUF file, e.g. file:/models/qwen.gguf or hf:org/repo/model.gguf");
  // llama.cpp runs in this process: its GPU backend reads the device selection from this process's environment when it loads.
  if (hardware) applyEngineEnvironment(process.env, hardware.engineEnvironment());
  const { ctxPerSlot, slots } = capacityOf(config);
  const instances = embeddedInstances(
    {
      modelRef: config.modelRef,
      slots,
      ctx: ctxPerSlot,
      threads: config.embedded?.threads ?? defaultThreads(availableParallelism()),
      gpu: config.embedded?.gpu ?? "auto",
      gpuLayers: config.embedded?.gpuLayers ?? "auto",
      deviceMask: config.deviceMask ?? "",
      baseDir: process.cwd(),
    },
    logger.child({ adapter: "llamacpp-embedded" }),
  );
  return switching(config, instances, logger, hardware);
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
