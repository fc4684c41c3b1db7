// One GGUF model loaded in this process, with the slots it runs on: context
// sequences for a generation model, one embedding or ranking context per
// slot for the others. What a model can do is read from its own metadata, so
// a generation model never claims embeddings and vice versa.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { LlamaContextSequence, LlamaEmbeddingContext, LlamaModel, LlamaRankingContext } from "node-llama-cpp";
import { Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { readGgufHeader } from "../gguf/gguf-header.js";
import { AffinityPool } from "./affinity-pool.js";
import type { LlamaRuntime } from "./llama-runtime.js";

export type ModelKind = "generation" | "embedding" | "ranking";

export interface ModelSlots {
  /** Per-slot context size in tokens (what ctx_max reports). */
  contextSize: number;
  slots: number;
  threads: number;
  gpuLayers: "auto" | "max" | number;
}

export type SlotsOf =
  | { kind: "generation"; pool: AffinityPool<LlamaContextSequence> }
  | { kind: "embedding"; pool: AffinityPool<LlamaEmbeddingContext> }
  | { kind: "ranking"; pool: AffinityPool<LlamaRankingContext> };

export interface EmbeddedModel {
  path: string;
  model: LlamaModel;
  kind: ModelKind;
  /** sha256 of the file, as `sha256:<hex>`. */
  digest: string;
  contextSize: number;
  slots: SlotsOf;
  dispose(): Promise<void>;
}

/** llama.cpp's pooling types (llama.h): none or unspecified means a generation model. */
const POOLING_NONE = 0;

export function kindOf(model: LlamaModel): ModelKind {
  if (model.fileInsights.supportsRanking) return "ranking";
  const pooling = model.fileInfo.architectureMetadata?.pooling_type;
  return pooling !== undefined && Number(pooling) > POOLING_NONE ? "embedding" : "generation";
}

export function workloadsOf(kind: ModelKind): Workload[] {
  switch (kind) {
    case "generation":
      return [Workload.WORKLOAD_COMPLETION];
    case "embedding":
      return [Workload.WORKLOAD_EMBEDDING];
    case "ranking":
      return [Workload.WORKLOAD_RERANK];
  }
}

/** Loads the file and creates its slots; nothing is left allocated when any step fails. `onProgress` hears the file's load in bytes. */
export async function loadEmbeddedModel(
  runtime: LlamaRuntime,
  path: string,
  opts: ModelSlots,
  onProgress?: (bytesDone: number, bytesTotal: number) => void,
): Promise<EmbeddedModel> {
  // node-llama-cpp can spin on a file that is not GGUF at all; the header check makes that an error.
  await readGgufHeader(path);
  const digest = fileDigest(path);
  // Observed at once so a failed load below is the error reported, not an unhandled rejection.
  digest.catch(() => undefined);
  const size = onProgress ? (await stat(path)).size : 0;
  const model = await loadModelFile(
    runtime,
    path,
    opts.gpuLayers,
    onProgress && ((fraction) => onProgress(Math.round(fraction * size), size)),
  );
  try {
    const kind = kindOf(model);
    const contextSize = Math.min(opts.contextSize, model.trainContextSize);
    const slots = await createSlots(model, kind, { ...opts, contextSize });
    return {
      path,
      model,
      kind,
      digest: await digest,
      contextSize,
      slots,
      dispose: async () => {
        await disposeSlots(slots);
        await model.dispose();
      },
    };
  } catch (err) {
    await model.dispose();
    throw err;
  }
}

async function loadModelFile(
  runtime: LlamaRuntime,
  path: string,
  gpuLayers: ModelSlots["gpuLayers"],
  onLoadProgress?: (fraction: number) => void,
): Promise<LlamaModel> {
  const before = runtime.lastNativeError();
  try {
    return await runtime.llama.loadModel({ modelPath: path, gpuLayers, onLoadProgress });
  } catch (err) {
    const reason = runtime.lastNativeError();
    const message = (err as Error).message;
    throw new Error(reason && reason !== before ? `${message}: ${reason}` : message, { cause: err });
  }
}

async function createSlots(model: LlamaModel, kind: ModelKind, opts: ModelSlots): Promise<SlotsOf> {
  const { contextSize, slots, threads } = opts;
  if (kind === "generation") {
    const context = await model.createContext({ contextSize, sequences: slots, threads });
    return { kind, pool: new AffinityPool(Array.from({ length: slots }, () => context.getSequence())) };
  }
  const many = <T>(create: () => Promise<T>) => Promise.all(Array.from({ length: slots }, create));
  if (kind === "embedding")
    return { kind, pool: new AffinityPool(await many(() => model.createEmbeddingContext({ contextSize, threads }))) };
  return { kind, pool: new AffinityPool(await many(() => model.createRankingContext({ contextSize, threads }))) };
}

async function disposeSlots(slots: SlotsOf): Promise<void> {
  if (slots.kind === "generation") {
    // The sequences share one context; disposing it frees them all.
    await slots.pool.slots[0]?.context.dispose();
    return;
  }
  await Promise.all(slots.pool.slots.map((c) => c.dispose()));
}

function fileDigest(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(`sha256:${hash.digest("hex")}`));
  });
}
