// One GPU as a vendor tool reports it, in bytes and percent, with every figure
// the tool could not give left undefined rather than guessed.

/** Which kind of replica a host makes: NVIDIA GPUs, AMD GPUs, or none (RAM serves as the model's memory). */
export type GpuKind = "cuda" | "rocm" | "cpu";

export interface GpuDevice {
  /** The tool's index: nvidia-smi's (which CUDA_VISIBLE_DEVICES indices also follow), rocm-smi's card number. */
  index: number;
  /** nvidia-smi's UUID ("GPU-8932f937-d72c-..."); "" where the tool reports none (rocm-smi as queried here). */
  uuid: string;
  name: string;
  /** Undefined where the tool printed the figure as unavailable ("[N/A]", "[Not Supported]"). */
  memoryTotalBytes?: number;
  memoryUsedBytes?: number;
  memoryFreeBytes?: number;
  /** 0..100: the share of the last sample period the GPU was busy. */
  utilizationPercent?: number;
}

/** The tool printed something its parser does not read; the message says where and what. */
export class SmiOutputError extends Error {
  override readonly name = "SmiOutputError";
}

/** Free memory: the tool's own figure, else total minus used when both are known. */
export function freeBytesOf(d: GpuDevice): number | undefined {
  if (d.memoryFreeBytes !== undefined) return d.memoryFreeBytes;
  if (d.memoryTotalBytes !== undefined && d.memoryUsedBytes !== undefined) return Math.max(0, d.memoryTotalBytes - d.memoryUsedBytes);
  return undefined;
}

/** "0 (NVIDIA A10, GPU-5c4e...)": how a device is named in messages. */
export function describeDevice(d: GpuDevice): string {
  return `${d.index} (${[d.name, d.uuid].filter((s) => s !== "").join(", ")})`;
}
