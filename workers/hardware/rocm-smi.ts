// What `rocm-smi --showmeminfo vram --showuse --json` prints, read strictly.
// From rocm_smi.py (ROCm/rocm_smi_lib, python_smi_tools): with --json every
// log line "<name>: <value>" of a device becomes JSON_DATA["card<N>"][name] =
// value, N being the tool's device index and every value a string;
// showMemInfo logs "VRAM Total Memory (B)" and "VRAM Total Used Memory (B)"
// (bytes), showGpuUse logs "GPU use (%)", or the value-less line "GPU use
// Unsupported" (which the JSON drops). A figure the library cannot read is
// likewise left out, so a missing key means "not reported". The tool reports
// no UUID and no product name for this query: devices are named "card<N>".
import { SmiOutputError, type GpuDevice } from "./gpu-device.js";

export const ROCM_SMI = "rocm-smi";

export const ROCM_SMI_ARGS: readonly string[] = ["--showmeminfo", "vram", "--showuse", "--json"];

const TOTAL = "VRAM Total Memory (B)";
const USED = "VRAM Total Used Memory (B)";
const USE = "GPU use (%)";

/** The devices of one answer, by index. Throws SmiOutputError for output that is not that JSON object. */
export function parseRocmSmiJson(stdout: string): GpuDevice[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new SmiOutputError(`rocm-smi did not print JSON: "${stdout.trim().slice(0, 120)}"`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new SmiOutputError("rocm-smi's JSON is not an object");
  const devices: GpuDevice[] = [];
  for (const [key, value] of Object.entries(parsed)) {
    const card = /^card(\d+)$/.exec(key);
    // "system" and any other top-level entry describe the host, not a device.
    if (!card) continue;
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new SmiOutputError(`rocm-smi's ${key} is not an object`);
    const fields = value as Record<string, unknown>;
    const total = figure(fields[TOTAL], `${key}: ${TOTAL}`);
    const used = figure(fields[USED], `${key}: ${USED}`);
    devices.push({
      index: Number(card[1]),
      uuid: "",
      name: key,
      memoryTotalBytes: total,
      memoryUsedBytes: used,
      memoryFreeBytes: total !== undefined && used !== undefined ? Math.max(0, total - used) : undefined,
      utilizationPercent: figure(fields[USE], `${key}: ${USE}`),
    });
  }
  return devices.sort((a, b) => a.index - b.index);
}

function figure(value: unknown, where: string): number | undefined {
  if (value === undefined || value === "N/A") return undefined;
  if (typeof value !== "string" || !/^\d+(\.\d+)?$/.test(value.trim()))
    throw new SmiOutputError(`rocm-smi ${where} is ${JSON.stringify(value)}, not a number`);
  return Number(value);
}
