import test from "ava";
import { Engine } from "../../../../contracts/gen/llama_orch/v1/common.js";
import { edgeConfigFromFlags } from "../../../../edge/edge-config.js";
import { modelNamesFromConfig } from "../../../../edge/compat/model-names.js";

test("the models: section maps friendly names to engine, model_ref and the optional ctx and pool", (t) => {
  t.deepEqual(
    modelNamesFromConfig({
      "qwen2.5-0.5b": { engine: "llamacpp", model_ref: "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/q4.gguf", ctx: 4096, pool: "gpu" },
      big: { engine: "vllm", model_ref: "hf:org/big" },
    }),
    {
      "qwen2.5-0.5b": { engine: Engine.ENGINE_LLAMACPP, modelRef: "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/q4.gguf", ctx: 4096, pool: "gpu" },
      big: { engine: Engine.ENGINE_VLLM, modelRef: "hf:org/big" },
    },
  );
  t.deepEqual(modelNamesFromConfig(undefined), {});
});

test("a malformed entry stops the edge with a message naming it", (t) => {
  const refuse = (raw: unknown, message: RegExp) => t.throws(() => modelNamesFromConfig(raw), { message });
  refuse(["a"], /edge\.models must be a mapping/);
  refuse({ a: "hf:x/y" }, /edge\.models\.a must be a mapping/);
  refuse({ a: { engine: "ollama", model_ref: "x" } }, /edge\.models\.a\.engine must be an engine name/);
  refuse({ a: { engine: "vllm" } }, /edge\.models\.a\.model_ref must be a model reference/);
  refuse({ a: { engine: "vllm", model_ref: "x", ctx: 0 } }, /edge\.models\.a\.ctx must be a positive integer/);
  refuse({ a: { engine: "vllm", model_ref: "x", pool: "" } }, /edge\.models\.a\.pool must be a pool id/);
  refuse({ a: { engine: "vllm", model_ref: "x", modelref: "y" } }, /edge\.models\.a\.modelref is not a setting/);
  refuse({ " a": { engine: "vllm", model_ref: "x" } }, /without surrounding spaces/);
});

test("the edge config reads models from its section and the compat defaults from flags", (t) => {
  const config = edgeConfigFromFlags(
    { "default-deadline-ms": "30000", "default-max-tokens": "64" },
    { models: { m: { engine: "tgi", model_ref: "hf:a/b" } } },
  );
  t.like(config, { defaultDeadlineMs: 30_000, defaultMaxTokens: 64 });
  t.deepEqual(config.models, { m: { engine: Engine.ENGINE_TGI, modelRef: "hf:a/b" } });
  t.like(edgeConfigFromFlags({}), { defaultDeadlineMs: 600_000, defaultMaxTokens: 1024, models: {} });
});
