import type { Workload } from "../../contracts/gen/llama_orch/v1/common.js";

/** How a sidecar reaches the engine it adapts; the same shape for every HTTP engine. */
export interface HttpEngineOptions {
  /** The engine's URL, e.g. http://127.0.0.1:8081. */
  baseUrl: string;
  /** What the sidecar announces (Info.model_ref). */
  modelRef: string;
  /** The model name the engine expects in requests or paths, when it needs one. */
  engineModel?: string;
  /** Sent as Authorization: Bearer; never logged, redacted from errors. */
  apiKey?: string;
  /** Overrides the engine's capacity when it does not expose it. */
  slots?: number;
  /** Health and props polling interval, default 2000 ms. */
  pollIntervalMs?: number;
  /**
   * What the engine was started to serve (--workloads), for the adapters
   * that run more than completions (llamacpp, vllm); default completion.
   */
  workloads?: readonly Workload[];
}

/** A configured slot count when it is a positive integer, else the engine's default. */
export function positiveSlots(slots: number | undefined, fallback: number): number {
  return slots !== undefined && Number.isInteger(slots) && slots > 0 ? slots : fallback;
}
