import test from "ava";
import { adapterNameOf } from "../../../workers/sidecar/adapter-factory.js";
import { startWorker } from "../../../workers/sidecar/worker.js";
import { quietLogger } from "./helpers.js";

test("a GGUF model picks the embedded engine, local or to download; an engine URL or command picks the engine's adapter", (t) => {
  t.is(adapterNameOf({ modelRef: "file:/models/m.gguf" }), "llamacpp-embedded");
  t.is(adapterNameOf({ modelRef: "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf" }), "llamacpp-embedded");
  t.is(adapterNameOf({ modelRef: "https://example.com/models/M.GGUF?download=true" }), "llamacpp-embedded");
  t.is(adapterNameOf({ modelRef: "hf:org/repo" }), "mock", "a whole repository is no GGUF file");
  t.is(adapterNameOf({ modelRef: "mock:tiny" }), "mock");
  t.is(adapterNameOf({ modelRef: "hf:org/m.gguf", engine: "vllm", engineCmd: "vllm serve {model_path} --port {port}" }), "vllm");
  t.is(adapterNameOf({ modelRef: "hf:org/m.gguf", engineUrl: "http://127.0.0.1:8081" }), "llamacpp");
});

for (const [what, config, message] of [
  [
    "--model-ttl on the mock",
    { modelTtlMs: 1000 },
    /--model-ttl needs an engine this sidecar runs .*the mock adapter's is not its to stop/,
  ],
  [
    "--model-ttl on an engine someone else runs",
    { modelRef: "hf:org/repo", engineUrl: "http://127.0.0.1:9", modelTtlMs: 1000 },
    /--model-ttl needs an engine this sidecar runs .*the llamacpp adapter's is not its to stop/,
  ],
  [
    "--engine-cmd without {port} and without --engine-url",
    { modelRef: "hf:org/repo", adapter: "llamacpp", engineCmd: "llama-server -m {model_path}" },
    /--engine-url is required for the llamacpp adapter, unless --engine-cmd takes \{port\}/,
  ],
  [
    "an unknown placeholder",
    { modelRef: "hf:org/repo", engineCmd: "llama-server -m {model} --port {port}" },
    /unknown placeholder \{model\} in --engine-cmd/,
  ],
] as const) {
  test(`${what} is refused at startup`, async (t) => {
    await t.throwsAsync(startWorker(config, quietLogger), { message });
  });
}
