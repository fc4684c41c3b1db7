// A fake `nvidia-smi` for tests: an executable on PATH that prints what the
// real tool prints for `--query-gpu=<fields> --format=csv[,noheader][,nounits]`
// and `-L`, from a JSON state file the test rewrites between runs (a GPU
// goes away, memory fills, the driver fails). It follows NVIDIA's
// documentation (https://docs.nvidia.com/deploy/nvidia-smi/index.html): the
// CSV columns in query order separated by ", ", a header line naming each
// field with its unit ("memory.total [MiB]", "utilization.gpu [%]") unless
// `noheader`, units after numbers ("24576 MiB", "35 %") unless `nounits`, a
// figure the device does not report printed as "[N/A]" or "[Not Supported]",
// the documented return codes (2: invalid argument, 9: driver not loaded,
// 15: GPU fallen off the bus, ...). With no GPUs it prints "No devices were
// found" and exits 6, as the real tool does on a host without one (exit
// code as observed, not documented). The message for a field it does not
// know is the real tool's (`Field "x" is not a valid field to query.`).
//
//   const smi = installFakeNvidiaSmi({ gpus: [FAKE_A10] });
//   process.env.PATH = smi.path;            // or pass smi.path to a child's env
//   smi.set({ gpus: [] });                   // the next run lists no GPU
//   smi.remove();
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface FakeGpu {
  /** Default: its position in the list. */
  index?: number;
  uuid: string;
  name: string;
  /** Numbers are MiB / percent; a string is printed as is ("[N/A]", "[Not Supported]"). */
  memoryTotalMiB: number | string;
  memoryUsedMiB: number | string;
  /** Default total minus used. */
  memoryFreeMiB?: number | string;
  utilizationPercent: number | string;
}

export interface FakeNvidiaSmiState {
  gpus: FakeGpu[];
  /** Instead of any output: this exit code and what the tool says (on stdout, where nvidia-smi prints its errors). */
  failure?: { exitCode: number; message: string };
  /** Time the tool takes before answering. */
  delayMs?: number;
}

export const FAKE_A10: FakeGpu = {
  uuid: "GPU-5c4e3a1b-7d2f-4e8a-9b6c-0a1b2c3d4e5f",
  name: "NVIDIA A10",
  memoryTotalMiB: 23028,
  memoryUsedMiB: 1028,
  utilizationPercent: 7,
};

export const FAKE_L4: FakeGpu = {
  uuid: "GPU-9f8e7d6c-5b4a-4321-8765-43210fedcba9",
  name: "NVIDIA L4",
  memoryTotalMiB: 23034,
  memoryUsedMiB: 20034,
  utilizationPercent: 93,
};

export const NO_DRIVER = {
  exitCode: 9,
  message:
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
};

export interface SmiOutput {
  stdout: string;
  exitCode: number;
}

type Field = "index" | "uuid" | "name" | "memory.total" | "memory.used" | "memory.free" | "utilization.gpu";

const UNITS: Record<Field, string> = {
  index: "",
  uuid: "",
  name: "",
  "memory.total": "MiB",
  "memory.used": "MiB",
  "memory.free": "MiB",
  "utilization.gpu": "%",
};

/** What nvidia-smi prints for `args` in `state`. */
export function renderNvidiaSmi(args: readonly string[], state: FakeNvidiaSmiState): SmiOutput {
  if (state.failure) return { stdout: state.failure.message + "\n", exitCode: state.failure.exitCode };
  if (state.gpus.length === 0) return { stdout: "No devices were found\n", exitCode: 6 };
  const gpus = state.gpus.map((g, i) => ({ ...g, index: g.index ?? i }));
  if (args.length === 1 && (args[0] === "-L" || args[0] === "--list-gpus"))
    return { stdout: gpus.map((g) => `GPU ${g.index}: ${g.name} (UUID: ${g.uuid})\n`).join(""), exitCode: 0 };
  const query = option(args, "--query-gpu");
  const format = option(args, "--format")?.split(",");
  if (query === undefined || format === undefined || !format.includes("csv"))
    return { stdout: "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n", exitCode: 2 };
  const fields = query.split(",");
  const unknown = fields.find((f) => !(f in UNITS));
  if (unknown !== undefined) return { stdout: `Field "${unknown}" is not a valid field to query.\n\n`, exitCode: 2 };
  const units = !format.includes("nounits");
  const lines = gpus.map((g) => (fields as Field[]).map((f) => cell(g, f, units)).join(", "));
  if (!format.includes("noheader")) lines.unshift((fields as Field[]).map((f) => (UNITS[f] ? `${f} [${UNITS[f]}]` : f)).join(", "));
  return { stdout: lines.map((l) => l + "\n").join(""), exitCode: 0 };
}

function option(args: readonly string[], name: string): string | undefined {
  const i = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  return args[i] === name ? args[i + 1] : args[i]!.slice(name.length + 1);
}

function cell(g: FakeGpu & { index: number }, field: Field, units: boolean): string {
  const free =
    g.memoryFreeMiB ??
    (typeof g.memoryTotalMiB === "number" && typeof g.memoryUsedMiB === "number" ? g.memoryTotalMiB - g.memoryUsedMiB : "[N/A]");
  const value = {
    index: g.index,
    uuid: g.uuid,
    name: g.name,
    "memory.total": g.memoryTotalMiB,
    "memory.used": g.memoryUsedMiB,
    "memory.free": free,
    "utilization.gpu": g.utilizationPercent,
  }[field];
  return typeof value === "number" && units && UNITS[field] ? `${value} ${UNITS[field]}` : String(value);
}

export interface FakeNvidiaSmi {
  /** The directory holding the `nvidia-smi` executable. */
  binDir: string;
  /** PATH with `binDir` first: for process.env.PATH or a child process's env. */
  path: string;
  /** Replaces the state the next run reads (written atomically: a run never sees half a file). */
  set(state: FakeNvidiaSmiState): void;
  state(): FakeNvidiaSmiState;
  /** Every run so far: when it started and ended (epoch ms; end undefined while running or when it was killed). */
  runs(): { start: number; end?: number; args: string[] }[];
  remove(): void;
}

/**
 * Writes an executable `nvidia-smi` into a new temp dir: a shell script that
 * execs node on nvidia-smi-fake-cli (through tsx when running from the
 * TypeScript sources), so the process a caller kills on a timeout is the
 * fake itself.
 */
export function installFakeNvidiaSmi(initial: FakeNvidiaSmiState): FakeNvidiaSmi {
  const dir = mkdtempSync(join(tmpdir(), "llorch-nvidia-smi-"));
  const binDir = join(dir, "bin");
  mkdirSync(binDir);
  const stateFile = join(dir, "state.json");
  const runsFile = join(dir, "runs.log");
  let current = initial;
  const set = (state: FakeNvidiaSmiState): void => {
    current = state;
    writeFileSync(`${stateFile}.tmp`, JSON.stringify(state));
    renameSync(`${stateFile}.tmp`, stateFile);
  };
  set(initial);
  const self = fileURLToPath(import.meta.url);
  const fromSources = self.endsWith(".ts");
  const cli = join(self, "..", `nvidia-smi-fake-cli.${fromSources ? "ts" : "js"}`);
  const loader = fromSources ? ` --import '${import.meta.resolve("tsx")}'` : "";
  const env = `FAKE_NVIDIA_SMI_STATE='${stateFile}' FAKE_NVIDIA_SMI_RUNS='${runsFile}'`;
  const script = `#!/bin/sh\n${env} exec '${process.execPath}'${loader} '${cli}' "$@"\n`;
  const executable = join(binDir, "nvidia-smi");
  writeFileSync(executable, script);
  chmodSync(executable, 0o755);
  return {
    binDir,
    path: [binDir, process.env.PATH ?? ""].join(delimiter),
    set,
    state: () => current,
    runs: () => runsOf(runsFile),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The runs log: one JSON line per start and per end, by process id. */
function runsOf(file: string): { start: number; end?: number; args: string[] }[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, "utf8");
  const byPid = new Map<number, { start: number; end?: number; args: string[] }>();
  for (const line of text.split("\n").filter(Boolean)) {
    const entry = JSON.parse(line) as { pid: number; at: number; event: "start" | "end"; args?: string[] };
    if (entry.event === "start") byPid.set(entry.pid, { start: entry.at, args: entry.args ?? [] });
    else byPid.get(entry.pid)!.end = entry.at;
  }
  return [...byPid.values()].sort((a, b) => a.start - b.start);
}
