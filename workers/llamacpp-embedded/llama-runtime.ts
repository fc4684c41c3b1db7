// The llama.cpp runtime inside this process, through node-llama-cpp. Loaded
// on first use only, so sidecars of other engines (and core, and the edge)
// never pay for its native library.
import type * as NodeLlamaCpp from "node-llama-cpp";
import type { Llama, LlamaLogLevel } from "node-llama-cpp";
import type { Logger } from "../../contracts/runtime/logger.js";

/** What `--gpu` accepts: node-llama-cpp's compute backends, or off for CPU only. */
export const GPU_CHOICES = ["auto", "off", "cuda", "vulkan", "metal"] as const;
export type GpuChoice = (typeof GPU_CHOICES)[number];

export interface LlamaRuntime {
  llama: Llama;
  /** e.g. "llama.cpp v0.4.0 (node-llama-cpp 3.21.1, cpu)": what engine_version reports. */
  engineVersion: string;
  /** The backend in use: "cpu", "cuda", "vulkan" or "metal". */
  backend: string;
  module: typeof NodeLlamaCpp;
  /** llama.cpp's last error line: its reasons never reach the exceptions node-llama-cpp throws ("Failed to load model"). */
  lastNativeError(): string | undefined;
}

const runtimes = new Map<GpuChoice, Promise<LlamaRuntime>>();

/** One runtime per backend choice and process: the native library loads once. */
export function llamaRuntime(gpu: GpuChoice, logger: Logger): Promise<LlamaRuntime> {
  let runtime = runtimes.get(gpu);
  if (!runtime) {
    runtime = loadRuntime(gpu, logger);
    runtimes.set(gpu, runtime);
    // A failed load may succeed later (e.g. a driver appeared); do not cache the failure.
    runtime.catch(() => runtimes.delete(gpu));
  }
  return runtime;
}

async function loadRuntime(gpu: GpuChoice, logger: Logger): Promise<LlamaRuntime> {
  const module = await import("node-llama-cpp");
  let lastError: string | undefined;
  const llama = await module.getLlama({
    gpu: gpu === "off" ? false : gpu,
    // Prebuilt binaries only: never compile or download at run time.
    build: "never",
    logLevel: module.LlamaLogLevel.warn,
    logger: (level: LlamaLogLevel, message: string) => {
      const severe = level === module.LlamaLogLevel.error || level === module.LlamaLogLevel.fatal;
      if (severe) lastError = message.trim();
      logNative(logger, level, severe, message);
    },
  });
  const backend = llama.gpu === false ? "cpu" : llama.gpu;
  const { release } = llama.llamaCppRelease;
  return {
    llama,
    backend,
    module,
    lastNativeError: () => lastError,
    engineVersion: `llama.cpp ${release} (node-llama-cpp ${await packageVersion()}, ${backend})`,
  };
}

/** llama.cpp's own warnings and errors become our log lines; chatter below warn is dropped by the runtime. */
function logNative(logger: Logger, level: LlamaLogLevel, severe: boolean, message: string): void {
  const text = message.trim();
  if (!text) return;
  if (severe) logger.error({ event: "llama_cpp_log", level }, text);
  else logger.warn({ event: "llama_cpp_log", level }, text);
}

/** The package does not export its package.json, so it is read beside the entry point. */
async function packageVersion(): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  const entry = new URL(import.meta.resolve("node-llama-cpp"));
  const manifest = JSON.parse(await readFile(new URL("../package.json", entry), "utf8")) as { version: string };
  return manifest.version;
}
