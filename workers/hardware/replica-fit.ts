// The fit check on a replica as it is now: a model's memory facts against
// the free memory of the replica's own devices (or RAM) in the latest
// snapshot, with the margin per device and the snapshot's gaps in the reason.
import { maskedMemory, type ResolvedMask } from "./device-mask.js";
import type { ModelMemory } from "./gguf-model-memory.js";
import type { HardwareSnapshot } from "./hardware-poller.js";
import { checkModelFit, type FitVerdict } from "./model-fit.js";

export interface ReplicaFitOptions {
  ctxPerSlot: number;
  slots: number;
  /** The engine's KV cache element size; default f16. */
  bytesPerElement?: number;
  /** Memory the running engine gives back when it is stopped first, counted as free (a model switch that stops the old engine). */
  freedBytes?: number;
}

export function checkFitOnReplica(
  model: ModelMemory,
  mask: ResolvedMask,
  snapshot: HardwareSnapshot,
  options: ReplicaFitOptions,
): FitVerdict {
  const memory = maskedMemory(mask, snapshot);
  const where = mask.kind === "cpu" ? "in RAM" : `on GPU ${mask.text}`;
  return checkModelFit({
    weightsBytes: model.weightsBytes,
    kv: model.kv,
    ctxPerSlot: options.ctxPerSlot,
    slots: options.slots,
    bytesPerElement: options.bytesPerElement,
    freeBytes: memory.freeBytes + (options.freedBytes ?? 0),
    memory: memory.incomplete ? `${where} (${memory.incomplete})` : where,
    devices: Math.max(1, mask.indices.length),
  });
}
