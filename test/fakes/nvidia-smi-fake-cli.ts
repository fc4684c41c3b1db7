// The fake nvidia-smi as a process (see nvidia-smi-fake.ts): logs its start,
// reads the state file FAKE_NVIDIA_SMI_STATE names, waits its delay, prints,
// logs its end, exits.
import { appendFileSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { renderNvidiaSmi, type FakeNvidiaSmiState } from "./nvidia-smi-fake.js";

const args = process.argv.slice(2);
const log = (event: "start" | "end"): void =>
  appendFileSync(process.env.FAKE_NVIDIA_SMI_RUNS!, JSON.stringify({ pid: process.pid, at: Date.now(), event, args }) + "\n");
log("start");
const state = JSON.parse(readFileSync(process.env.FAKE_NVIDIA_SMI_STATE!, "utf8")) as FakeNvidiaSmiState;
if (state.delayMs) await sleep(state.delayMs);
const { stdout, exitCode } = renderNvidiaSmi(args, state);
log("end");
process.stdout.write(stdout, () => process.exit(exitCode));
