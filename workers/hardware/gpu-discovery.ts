// One look at the host's GPUs: nvidia-smi where it is on PATH, else
// rocm-smi, else none (a CPU replica). A tool that is there but fails, or
// prints what its parser cannot read, makes a reading with no devices and
// the reason: the replica's GPUs are not usable right now, and says why.
import { SmiOutputError, type GpuDevice, type GpuKind } from "./gpu-device.js";
import { NVIDIA_SMI, NVIDIA_SMI_ARGS, NVIDIA_SMI_EXIT_CODES, parseNvidiaSmiCsv } from "./nvidia-smi.js";
import { ROCM_SMI, ROCM_SMI_ARGS, parseRocmSmiJson } from "./rocm-smi.js";
import { runTool } from "./tool-run.js";

export interface GpuReading {
  kind: GpuKind;
  /** The tool that was asked; absent for a CPU replica. */
  tool?: string;
  devices: GpuDevice[];
  /** Why the tool gave no devices: it failed, timed out, or printed something unreadable. */
  error?: string;
}

interface Tool {
  kind: Exclude<GpuKind, "cpu">;
  command: string;
  args: readonly string[];
  parse: (stdout: string) => GpuDevice[];
  exitMeaning: (code: number) => string | undefined;
}

const TOOLS: Record<Exclude<GpuKind, "cpu">, Tool> = {
  cuda: {
    kind: "cuda",
    command: NVIDIA_SMI,
    args: NVIDIA_SMI_ARGS,
    parse: parseNvidiaSmiCsv,
    exitMeaning: (c) => NVIDIA_SMI_EXIT_CODES[c],
  },
  rocm: { kind: "rocm", command: ROCM_SMI, args: ROCM_SMI_ARGS, parse: parseRocmSmiJson, exitMeaning: () => undefined },
};

const CPU: GpuReading = { kind: "cpu", devices: [] };

/**
 * The kind of replica this host makes, with a first reading: the first tool
 * present on PATH decides it (NVIDIA's before AMD's), even when that tool
 * then fails; neither present means CPU.
 */
export async function detectGpus(timeoutMs: number): Promise<GpuReading> {
  for (const kind of ["cuda", "rocm"] as const) {
    const reading = await readGpus(kind, timeoutMs);
    if (reading !== undefined) return reading;
  }
  return CPU;
}

/** One reading of `kind`'s tool; undefined when the tool is not on PATH. For "cpu", the (empty) CPU reading. */
export async function readGpus(kind: GpuKind, timeoutMs: number): Promise<GpuReading | undefined> {
  if (kind === "cpu") return CPU;
  const tool = TOOLS[kind];
  const run = await runTool(tool.command, tool.args, timeoutMs, tool.exitMeaning);
  if (run.outcome === "absent") return undefined;
  if (run.outcome === "failed") return { kind, tool: tool.command, devices: [], error: run.reason };
  try {
    return { kind, tool: tool.command, devices: tool.parse(run.stdout) };
  } catch (err) {
    if (!(err instanceof SmiOutputError)) throw err;
    return { kind, tool: tool.command, devices: [], error: err.message };
  }
}
