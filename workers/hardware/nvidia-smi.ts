// What `nvidia-smi --query-gpu=... --format=csv,noheader,nounits` prints, read
// strictly. Per NVIDIA's nvidia-smi documentation
// (https://docs.nvidia.com/deploy/nvidia-smi/index.html) the CSV format has a
// mandatory `csv`, `noheader` skips the header line and `nounits` drops the
// units: memory.* are then plain MiB ("memory.total [MiB]" in the header) and
// utilization.gpu a plain percent. A figure a device does not report is
// printed in brackets, "[N/A]" or "[Not Supported]" (e.g. memory on
// unified-memory parts, utilization on some GeForce boards). The return code
// says whether the query worked and, if not, why (the RETURN VALUE section,
// quoted in NVIDIA_SMI_EXIT_CODES).
import { SmiOutputError, type GpuDevice } from "./gpu-device.js";

export const NVIDIA_SMI = "nvidia-smi";

/** The query columns, in the order they are printed. */
export const NVIDIA_SMI_FIELDS = ["index", "uuid", "name", "memory.total", "memory.used", "memory.free", "utilization.gpu"] as const;

export const NVIDIA_SMI_ARGS: readonly string[] = [`--query-gpu=${NVIDIA_SMI_FIELDS.join(",")}`, "--format=csv,noheader,nounits"];

const MIB = 1024 * 1024;

/** nvidia-smi's documented return codes other than 0 (success). */
export const NVIDIA_SMI_EXIT_CODES: Readonly<Record<number, string>> = {
  2: "a supplied argument or flag is invalid",
  3: "the requested operation is not available on target device",
  4: "the current user does not have permission to access this device or perform this operation",
  6: "a query to find an object was unsuccessful",
  8: "a device's external power cables are not properly attached",
  9: "NVIDIA driver is not loaded",
  10: "NVIDIA kernel detected an interrupt issue with a GPU",
  12: "NVML shared library couldn't be found or loaded",
  13: "local version of NVML doesn't implement this function",
  14: "infoROM is corrupted",
  15: "the GPU has fallen off the bus or has otherwise become inaccessible",
  255: "other error or internal driver error occurred",
};

/**
 * The devices of one query's output, in the order printed. Throws
 * SmiOutputError naming the line and field for anything else: a short line,
 * an index that is not a number or repeats, a figure that is neither a
 * number nor a bracketed "not available". A name may contain commas: the
 * fields around it are fixed.
 */
export function parseNvidiaSmiCsv(stdout: string): GpuDevice[] {
  const devices: GpuDevice[] = [];
  const seen = new Set<number>();
  const lines = stdout.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `nvidia-smi output line ${i + 1}`;
    const cells = line.split(",").map((c) => c.trim());
    if (cells.length < NVIDIA_SMI_FIELDS.length)
      throw new SmiOutputError(`${where}: ${cells.length} comma-separated fields, expected ${NVIDIA_SMI_FIELDS.length}: "${line}"`);
    const [index, uuid] = cells;
    const [total, used, free, utilization] = cells.slice(-4);
    if (!/^\d+$/.test(index!)) throw new SmiOutputError(`${where}: index "${index}" is not a GPU index`);
    if (uuid === "" || isUnavailable(uuid!)) throw new SmiOutputError(`${where}: no UUID ("${uuid}")`);
    const device: GpuDevice = {
      index: Number(index),
      uuid: uuid!,
      name: cells.slice(2, -4).join(", "),
      memoryTotalBytes: mib(total!, `${where}: memory.total`),
      memoryUsedBytes: mib(used!, `${where}: memory.used`),
      memoryFreeBytes: mib(free!, `${where}: memory.free`),
      utilizationPercent: figure(utilization!, `${where}: utilization.gpu`),
    };
    if (seen.has(device.index)) throw new SmiOutputError(`${where}: GPU ${device.index} is listed twice`);
    seen.add(device.index);
    devices.push(device);
  });
  return devices;
}

/** "[N/A]", "[Not Supported]", "[Unknown Error]", ...: nvidia-smi's brackets around a figure it cannot give. */
function isUnavailable(cell: string): boolean {
  return /^\[.*\]$/.test(cell) || cell === "N/A";
}

function figure(cell: string, where: string): number | undefined {
  if (isUnavailable(cell)) return undefined;
  if (!/^\d+(\.\d+)?$/.test(cell)) throw new SmiOutputError(`${where} is "${cell}", not a number`);
  return Number(cell);
}

function mib(cell: string, where: string): number | undefined {
  const value = figure(cell, where);
  return value === undefined ? undefined : Math.round(value * MIB);
}
