// The llama.cpp fake (llamacpp-fake.ts) as a process of its own, for tests of
// engine supervision (`llorch worker --engine-cmd …`): the sidecar starts it,
// probes it, and restarts it when it dies.
//
//   node --import tsx test/fakes/llamacpp-fake-process.ts --port 8081 [-m model.gguf] [--pid-file F] [--load-ms 300] [--record-env F]
//
// -m/--model is the model file, as llama-server takes it: /props reports it as
// `model_path`, and while --load-ms runs /health says "Loading model" (503).
// Like llama-server (tools/server/server.cpp: the HTTP server answers 503
// while the model loads; a model that fails to load logs "failed to load
// model" and "exiting due to model loading error" and the process exits 1),
// a file that is missing or does not start with the GGUF magic ends the
// process with code 1 once the load time has passed.
//
// --record-env writes the GPU selection the process was started with
// (CUDA_VISIBLE_DEVICES and the ROCm equivalents), as JSON. (Not --env-file:
// node takes that one for itself, even after the script name.)
import { openSync, readSync, closeSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startFakeLlamaCpp } from "./llamacpp-fake.js";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    model: { type: "string", short: "m" },
    "pid-file": { type: "string" },
    "load-ms": { type: "string" },
    "record-env": { type: "string" },
  },
});
if (values["record-env"]) {
  const gpuEnv = ["CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"].map((k) => [k, process.env[k] ?? null]);
  writeFileSync(values["record-env"], JSON.stringify(Object.fromEntries(gpuEnv)));
}
const model = values.model;
const fake = await startFakeLlamaCpp({
  port: Number(values.port),
  health: values["load-ms"] || model ? "loading" : "ready",
  ...(model ? { modelPath: model } : {}),
});
if (values["pid-file"]) writeFileSync(values["pid-file"], String(process.pid));

/** Why llama.cpp would not load the file, or undefined when it starts with the GGUF magic. */
function loadError(path: string): string | undefined {
  try {
    const fd = openSync(path, "r");
    const magic = Buffer.alloc(4);
    readSync(fd, magic, 0, 4, 0);
    closeSync(fd);
    return magic.toString("latin1") === "GGUF" ? undefined : "invalid magic characters: not a GGUF file";
  } catch (err) {
    return `failed to open ${path}: ${(err as Error).message}`;
  }
}

setTimeout(
  () => {
    const error = model ? loadError(model) : undefined;
    if (error === undefined) {
      fake.setBehaviour({ health: "ready" });
      return;
    }
    process.stderr.write(`llama_model_load: error loading model: ${error}\nsrv    load_model: failed to load model, '${model}'\n`);
    process.stderr.write("main: exiting due to model loading error\n");
    void fake.close().then(() => process.exit(1));
  },
  Number(values["load-ms"] ?? 0),
);
const stop = () => void fake.close().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
