// The llama.cpp fake (llamacpp-fake.ts) as a process of its own, for tests of
// engine supervision (`llorch worker --engine-cmd …`): the sidecar starts it,
// probes it, and restarts it when it dies.
//
//   node --import tsx test/fakes/llamacpp-fake-process.ts --port 8081 [--pid-file F] [--load-ms 300] [--record-env F]
//
// --record-env writes the GPU selection the process was started with
// (CUDA_VISIBLE_DEVICES and the ROCm equivalents), as JSON. (Not --env-file:
// node takes that one for itself, even after the script name.)
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startFakeLlamaCpp } from "./llamacpp-fake.js";

const { values } = parseArgs({
  options: { port: { type: "string" }, "pid-file": { type: "string" }, "load-ms": { type: "string" }, "record-env": { type: "string" } },
});
if (values["record-env"]) {
  const gpuEnv = ["CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"].map((k) => [k, process.env[k] ?? null]);
  writeFileSync(values["record-env"], JSON.stringify(Object.fromEntries(gpuEnv)));
}
const fake = await startFakeLlamaCpp({ port: Number(values.port), health: values["load-ms"] ? "loading" : "ready" });
if (values["pid-file"]) writeFileSync(values["pid-file"], String(process.pid));
if (values["load-ms"]) setTimeout(() => fake.setBehaviour({ health: "ready" }), Number(values["load-ms"]));
const stop = () => void fake.close().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
