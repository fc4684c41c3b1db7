// Whether a model fits in a replica's free memory, before its engine is
// started: the GGUF file (the weights, whole) plus a KV cache of ctx tokens
// for every slot, plus a margin. Pure, from figures; gguf-model-memory.ts
// reads them from the file.

/** The attention shape the KV cache follows, from the GGUF's `<arch>.*` metadata. */
export interface KvCacheShape {
  layers: number;
  /** `attention.head_count_kv`: one count for every layer, or one per layer. */
  kvHeads: number | readonly number[];
  /** `attention.key_length` / `value_length`: per-head dimensions (embedding_length / head_count when absent). */
  keyLength: number;
  valueLength: number;
}

/** llama.cpp's KV cache type is f16 unless -ctk/-ctv say otherwise (tools/server/README.md). */
export const F16_BYTES = 2;

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** llama.cpp's own --fit leaves 1024 MiB free per device by default (`--fit-target`, tools/server/README.md). */
export const MARGIN_PER_DEVICE_BYTES = 1024 * MIB;

/**
 * Bytes of K and V one token takes in every layer: Σ_layers kv_heads ×
 * (key_length + value_length) × bytes per element, as llama.cpp sizes its
 * cache (n_embd_k_gqa + n_embd_v_gqa per layer). Sliding-window layers are
 * counted at full size, so models that use them are over-estimated.
 */
export function kvBytesPerToken(shape: KvCacheShape, bytesPerElement = F16_BYTES): number {
  const perHead = (shape.keyLength + shape.valueLength) * bytesPerElement;
  if (typeof shape.kvHeads === "number") return shape.layers * shape.kvHeads * perHead;
  let heads = 0;
  for (let layer = 0; layer < shape.layers; layer++) heads += shape.kvHeads[layer] ?? 0;
  return heads * perHead;
}

export interface FitRequest {
  /** The GGUF file's size (all parts of a split model): llama.cpp loads every tensor. */
  weightsBytes: number;
  /** Undefined for a model without attention metadata (a recurrent one): no KV cache is estimated. */
  kv: KvCacheShape | undefined;
  /** Tokens of context per slot (llama-server's -c divided by --parallel). */
  ctxPerSlot: number;
  slots: number;
  freeBytes: number;
  /** Where `freeBytes` is free, for the reason: "on GPU 0,1", "in RAM". */
  memory: string;
  /** Devices the model spreads over: the margin is per device. Default 1. */
  devices?: number;
  /** Default F16_BYTES. */
  bytesPerElement?: number;
  /** Overrides MARGIN_PER_DEVICE_BYTES × devices. */
  marginBytes?: number;
}

export interface FitVerdict {
  fits: boolean;
  neededBytes: number;
  freeBytes: number;
  weightsBytes: number;
  kvCacheBytes: number;
  marginBytes: number;
  /** Both ways, the sum and what it is made of; for a refusal, what is missing. */
  reason: string;
}

export function checkModelFit(req: FitRequest): FitVerdict {
  for (const [name, value] of [
    ["ctxPerSlot", req.ctxPerSlot],
    ["slots", req.slots],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  const bytesPerElement = req.bytesPerElement ?? F16_BYTES;
  const tokens = req.ctxPerSlot * req.slots;
  const kvCacheBytes = req.kv ? kvBytesPerToken(req.kv, bytesPerElement) * tokens : 0;
  const marginBytes = req.marginBytes ?? MARGIN_PER_DEVICE_BYTES * Math.max(1, req.devices ?? 1);
  const neededBytes = req.weightsBytes + kvCacheBytes + marginBytes;
  const fits = neededBytes <= req.freeBytes;
  const kvPart = req.kv
    ? `KV cache ${bytes(kvCacheBytes)} for ${req.slots} slot${req.slots === 1 ? "" : "s"} × ${req.ctxPerSlot} tokens at ${bytesPerElement} bytes per element`
    : "no KV cache estimate (the model has no attention metadata)";
  const sum = `weights ${bytes(req.weightsBytes)} + ${kvPart} + margin ${bytes(marginBytes)}`;
  const reason = fits
    ? `needs ${bytes(neededBytes)} (${sum}) of ${bytes(req.freeBytes)} free ${req.memory}`
    : `needs ${bytes(neededBytes)} (${sum}) but only ${bytes(req.freeBytes)} is free ${req.memory}: ${bytes(neededBytes - req.freeBytes)} short`;
  return { fits, neededBytes, freeBytes: req.freeBytes, weightsBytes: req.weightsBytes, kvCacheBytes, marginBytes, reason };
}

/** "4.1 GiB", "512.0 MiB", "900 B". */
export function bytes(n: number): string {
  if (n >= GIB) return `${(n / GIB).toFixed(1)} GiB`;
  if (n >= MIB) return `${(n / MIB).toFixed(1)} MiB`;
  return `${n} B`;
}
