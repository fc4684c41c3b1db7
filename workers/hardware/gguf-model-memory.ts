// What a GGUF file says about the memory its model needs: the size of its
// weights on disk (every part of a split model) and the attention shape its
// KV cache follows, read from the header with node-llama-cpp's
// readGgufFileInfo (metadata only, no tensor list), after the header check
// that keeps node-llama-cpp from spinning on a file that is not GGUF at all.
import { stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { readGgufHeader } from "../gguf/gguf-header.js";
import type { KvCacheShape } from "./model-fit.js";

export interface ModelMemory {
  /** Every file of the model (one, or the parts of a split GGUF in order). */
  files: string[];
  weightsBytes: number;
  architecture: string;
  /** Undefined when the metadata has no attention shape (recurrent architectures). */
  kv: KvCacheShape | undefined;
  /** `<arch>.context_length`: the context the model was trained for, when stated. */
  contextLength?: number;
}

/** Large arrays a fit check does not need; skipping them keeps the read small. */
const IGNORED_KEYS = ["tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"];

/** llama.cpp's split naming (llama_split_path): "<prefix>-00001-of-00003.gguf". */
const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

export async function readModelMemory(path: string): Promise<ModelMemory> {
  await readGgufHeader(path);
  const { readGgufFileInfo } = await import("node-llama-cpp");
  const info = await readGgufFileInfo(path, {
    readTensorInfo: false,
    logWarnings: false,
    spliceSplitFiles: false,
    ignoreKeys: IGNORED_KEYS,
  });
  // "split.count" (gguf-split's key) is not in node-llama-cpp's metadata types; it nests dotted keys like the others.
  const split = (info.metadata as unknown as { split?: { count?: unknown } }).split;
  const files = splitParts(path, typeof split?.count === "number" ? split.count : undefined);
  let weightsBytes = 0;
  for (const file of files) weightsBytes += (await stat(file)).size;
  const arch = info.architectureMetadata;
  const memory: ModelMemory = { files, weightsBytes, architecture: String(info.metadata.general?.architecture ?? ""), kv: kvShapeOf(arch) };
  if (typeof arch.context_length === "number") memory.contextLength = arch.context_length;
  return memory;
}

interface ArchitectureFields {
  block_count?: number;
  embedding_length?: number;
  attention?: { head_count?: number; head_count_kv?: number | number[]; key_length?: number; value_length?: number };
}

/** The KV shape from `<arch>.*` metadata, with llama.cpp's defaults: kv heads = heads, head dims = embedding / heads. */
export function kvShapeOf(arch: ArchitectureFields): KvCacheShape | undefined {
  const layers = arch.block_count;
  const heads = arch.attention?.head_count;
  if (!layers || !heads) return undefined;
  const headDim = arch.embedding_length ? arch.embedding_length / heads : undefined;
  const keyLength = arch.attention?.key_length ?? headDim;
  const valueLength = arch.attention?.value_length ?? headDim;
  if (!keyLength || !valueLength) return undefined;
  return { layers, kvHeads: arch.attention?.head_count_kv ?? heads, keyLength, valueLength };
}

function splitParts(path: string, count: number | undefined): string[] {
  if (!count || count <= 1) return [path];
  const match = SPLIT_NAME.exec(basename(path));
  if (!match) throw new Error(`${path} is part of a split GGUF (split.count ${count}) but is not named <name>-00001-of-000NN.gguf`);
  const [, prefix, , of] = match;
  return Array.from({ length: count }, (_, i) => join(dirname(path), `${prefix}-${String(i + 1).padStart(5, "0")}-of-${of}.gguf`));
}
