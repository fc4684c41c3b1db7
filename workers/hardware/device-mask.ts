// `--device-mask`: which of the host's GPUs a replica uses. Parsed and
// checked against the discovered devices once, at startup (a mask naming a
// GPU that is not there is an error, not a silent fallback); then the
// environment a supervised engine process gets, and the replica's memory
// figures (those of its devices only) from every later snapshot.
import { describeDevice, freeBytesOf, type GpuDevice, type GpuKind } from "./gpu-device.js";
import type { HardwareSnapshot } from "./hardware-poller.js";

export type DeviceMaskEntry = { index: number } | { uuid: string };

export class DeviceMaskError extends Error {
  override readonly name = "DeviceMaskError";
}

/** "0,1", "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6,2": indices or nvidia-smi UUIDs, comma-separated; "" means every device. */
export function parseDeviceMask(text: string): DeviceMaskEntry[] {
  if (text.trim() === "") return [];
  const entries = text.split(",").map((raw, i): DeviceMaskEntry => {
    const entry = raw.trim();
    if (/^\d+$/.test(entry)) return { index: Number(entry) };
    if (/^GPU-[0-9a-f]{8}(-[0-9a-f]+)+$/i.test(entry)) return { uuid: entry.toLowerCase() };
    throw new DeviceMaskError(
      `--device-mask ${text}: entry ${i + 1} ("${entry}") is neither a GPU index (0, 1, ...) nor a GPU UUID as nvidia-smi -L prints it (GPU-...)`,
    );
  });
  const keys = entries.map((e) => ("index" in e ? String(e.index) : e.uuid));
  const twice = keys.find((k, i) => keys.indexOf(k) !== i);
  if (twice !== undefined) throw new DeviceMaskError(`--device-mask ${text}: ${twice} is named twice`);
  return entries;
}

/** The mask resolved against the devices found at startup: what the replica uses, in the mask's order. */
export interface ResolvedMask {
  kind: GpuKind;
  /** Tool indices, in mask order; empty on a CPU replica. */
  indices: number[];
  /** nvidia-smi UUIDs in the same order ("" per device where the tool gives none). */
  uuids: string[];
  /** The replica's reported device mask: "0,1", or "cpu". */
  text: string;
  /** Whether `--device-mask` named the devices (else: every device found at startup). */
  explicit: boolean;
}

/**
 * Resolves `entries` (no entries: every device listed) against the first
 * snapshot. Throws DeviceMaskError, naming what is there, for a mask on a
 * host without GPUs, a mask while the tool fails, a device that does not
 * exist, a duplicate after resolution, or a UUID where the tool gives none.
 */
export function resolveDeviceMask(entries: readonly DeviceMaskEntry[], snapshot: HardwareSnapshot): ResolvedMask {
  const shown = entries.map((e) => ("index" in e ? String(e.index) : e.uuid)).join(",");
  if (snapshot.kind === "cpu") {
    if (entries.length > 0)
      throw new DeviceMaskError(
        `--device-mask ${shown}: this host has no GPU the sidecar can see (neither nvidia-smi nor rocm-smi is on PATH)`,
      );
    return { kind: "cpu", indices: [], uuids: [], text: "cpu", explicit: false };
  }
  if (entries.length > 0 && snapshot.error !== undefined) throw new DeviceMaskError(`--device-mask ${shown}: ${snapshot.error}`);
  const listed = snapshot.devices.length > 0 ? snapshot.devices.map(describeDevice).join(", ") : "none";
  const devices = entries.length === 0 ? [...snapshot.devices] : entries.map((e) => deviceOf(e, snapshot, shown, listed));
  const twice = devices.find((d, i) => devices.indexOf(d) !== i);
  if (twice) throw new DeviceMaskError(`--device-mask ${shown}: GPU ${twice.index} is named twice (by index and by UUID)`);
  const indices = devices.map((d) => d.index);
  return { kind: snapshot.kind, indices, uuids: devices.map((d) => d.uuid), text: indices.join(","), explicit: entries.length > 0 };
}

function deviceOf(entry: DeviceMaskEntry, snapshot: HardwareSnapshot, shown: string, listed: string): GpuDevice {
  const found = snapshot.devices.find((d) => ("index" in entry ? d.index === entry.index : d.uuid.toLowerCase() === entry.uuid));
  if (found) return found;
  if ("uuid" in entry && snapshot.devices.every((d) => d.uuid === ""))
    throw new DeviceMaskError(
      `--device-mask ${shown}: ${snapshot.tool ?? "the tool"} reports no UUIDs on this host; name devices by index (${listed})`,
    );
  const what = "index" in entry ? `GPU ${entry.index}` : `GPU ${entry.uuid}`;
  throw new DeviceMaskError(`--device-mask ${shown}: there is no ${what}; ${snapshot.tool ?? "the tool"} lists ${listed}`);
}

/**
 * Variables to set (a value) or remove (undefined) in a supervised engine's
 * environment so it sees exactly the mask's devices, in the mask's order.
 * CUDA: CUDA_VISIBLE_DEVICES by UUID, which CUDA's documentation accepts "in
 * the same format as given by nvidia-smi" and which does not depend on the
 * enumeration order CUDA_DEVICE_ORDER sets. ROCm: ROCR_VISIBLE_DEVICES,
 * which AMD's GPU isolation guide recommends on Linux; HIP_VISIBLE_DEVICES
 * and CUDA_VISIBLE_DEVICES (which HIP also reads) index into what ROCr
 * exposes, so inherited values would select again among the masked
 * devices: they are removed. This assumes rocm-smi's device order is ROCr's,
 * which AMD does not document (it holds on a single-GPU host). Without an
 * explicit mask nothing is changed: the engine sees what the sidecar was
 * given (a batch scheduler may already have set CUDA_VISIBLE_DEVICES, which
 * nvidia-smi does not follow), and likewise on a CPU replica.
 */
export function engineEnvironment(mask: ResolvedMask): Record<string, string | undefined> {
  if (!mask.explicit || mask.indices.length === 0) return {};
  if (mask.kind === "cuda") return { CUDA_VISIBLE_DEVICES: mask.uuids.map((u, i) => u || String(mask.indices[i])).join(",") };
  if (mask.kind === "rocm")
    return { ROCR_VISIBLE_DEVICES: mask.indices.join(","), HIP_VISIBLE_DEVICES: undefined, CUDA_VISIBLE_DEVICES: undefined };
  return {};
}

/** `base` with `changes` applied: a value sets, undefined removes. */
export function withEngineEnvironment(base: NodeJS.ProcessEnv, changes: Record<string, string | undefined>): NodeJS.ProcessEnv {
  return applyEngineEnvironment({ ...base }, changes);
}

/** Applies `changes` to `env` in place (this process's own, for an engine that runs inside it); returns it. */
export function applyEngineEnvironment(env: NodeJS.ProcessEnv, changes: Record<string, string | undefined>): NodeJS.ProcessEnv {
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** The replica's memory as of one snapshot: its masked devices only, or RAM on a CPU replica. */
export interface MaskedMemory {
  kind: GpuKind;
  /** The mask's devices the snapshot lists, in mask order. */
  devices: GpuDevice[];
  /** The mask's indices the snapshot does not list (the GPU went away, or the tool failed). */
  missing: number[];
  totalBytes: number;
  /** Devices whose free memory is not reported count as none free. */
  freeBytes: number;
  /** Why the figures are incomplete: devices missing or not reporting memory; undefined when they are whole. */
  incomplete?: string;
}

export function maskedMemory(mask: ResolvedMask, snapshot: HardwareSnapshot): MaskedMemory {
  if (mask.kind === "cpu")
    return { kind: "cpu", devices: [], missing: [], totalBytes: snapshot.ramTotalBytes, freeBytes: snapshot.ramFreeBytes };
  const devices: GpuDevice[] = [];
  const missing: number[] = [];
  mask.indices.forEach((index, i) => {
    const uuid = mask.uuids[i];
    const d = snapshot.devices.find((x) => (uuid ? x.uuid === uuid : x.index === index));
    if (d) devices.push(d);
    else missing.push(index);
  });
  const unreported = devices.filter((d) => freeBytesOf(d) === undefined || d.memoryTotalBytes === undefined).map((d) => d.index);
  const memory: MaskedMemory = {
    kind: mask.kind,
    devices,
    missing,
    totalBytes: devices.reduce((n, d) => n + (d.memoryTotalBytes ?? 0), 0),
    freeBytes: devices.reduce((n, d) => n + (freeBytesOf(d) ?? 0), 0),
  };
  const why = [
    mask.indices.length === 0 && snapshot.error ? snapshot.error : "",
    missing.length > 0 ? `GPU ${missing.join(", ")} not listed${snapshot.error ? ` (${snapshot.error})` : ""}` : "",
    unreported.length > 0 ? `GPU ${unreported.join(", ")} reports no memory figures` : "",
  ].filter((s) => s !== "");
  if (why.length > 0) memory.incomplete = why.join("; ");
  return memory;
}
