import test from "ava";
import { Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { startWorker, workerConfigFromFlags, workerFlagHelp, workerFlagNames } from "../../../workers/sidecar/worker.js";
import { quietLogger } from "./helpers.js";

test("every flag maps onto the config", (t) => {
  const config = workerConfigFromFlags({
    host: "0.0.0.0",
    port: "7001",
    advertise: "gpu1:7001",
    core: "127.0.0.1:7000",
    pool: "p1",
    replica: "r1",
    engine: "vllm",
    model: "meta/llama",
    "serves-any-model": "false",
    "device-mask": "GPU0,GPU1",
    "metrics-host": "0.0.0.0",
    "metrics-port": "9100",
    slots: "8",
    "ctx-max": "4096",
    "tokens-per-second": "12.5",
    "fail-after": "3",
    "fail-kind": "timeout",
    "hang-after": "0",
    "slow-start-ms": "200",
    "load-ms": "1000",
    "reload-ms": "50",
    "reject-models": "mock:bad, org/other ,",
    "keys-file": "/k.yaml",
    "tls-cert": "/w.pem",
    "tls-key": "/w.key",
    "tls-ca": "/ca.pem",
  });
  t.deepEqual(config, {
    host: "0.0.0.0",
    port: 7001,
    advertiseAddress: "gpu1:7001",
    coreAddress: "127.0.0.1:7000",
    poolId: "p1",
    replicaId: "r1",
    engine: "vllm",
    modelRef: "meta/llama",
    servesAnyModel: false,
    deviceMask: "GPU0,GPU1",
    metricsHost: "0.0.0.0",
    metricsPort: 9100,
    mock: {
      slots: 8,
      ctxMax: 4096,
      tokensPerSecond: 12.5,
      failAfter: 3,
      failKind: "timeout",
      hangAfter: 0,
      slowStartMs: 200,
      loadMs: 1000,
      reloadMs: 50,
      rejectModels: ["mock:bad", "org/other"],
    },
    security: { keysFile: "/k.yaml", tls: { cert: "/w.pem", key: "/w.key", ca: "/ca.pem" } },
  });
});

test("a bare boolean flag is true, dashes in keys are tolerated, absent flags stay unset", (t) => {
  t.deepEqual(workerConfigFromFlags({ "--serves-any-model": true, port: undefined }), { servesAnyModel: true });
});

for (const [flag, value, message] of [
  ["port", "70000", /--port must be an integer from 0 to 65535/],
  ["port", "12abc", /--port/],
  ["port", "", /--port needs a value/],
  ["slots", "0", /--slots must be an integer of at least 1/],
  ["tokens-per-second", "-1", /--tokens-per-second must be a non-negative number/],
  ["fail-after", "1.5", /--fail-after/],
  ["fail-kind", "boom", /--fail-kind: unknown error kind "boom"/],
  ["engine", "ollama", /--engine: unknown engine "ollama"/],
  ["serves-any-model", "maybe", /--serves-any-model must be true or false/],
  ["host", true, /--host needs a value/],
  ["reload-ms", "-5", /--reload-ms must be an integer of at least 0/],
  ["reject-models", "", /--reject-models needs a value/],
  ["reject-models", " , ", /--reject-models needs at least one value/],
] as const) {
  test(`--${flag} ${String(value)} is refused with a message naming the flag`, (t) => {
    t.throws(() => workerConfigFromFlags({ [flag]: value }), { message: message });
  });
}

test("the help text lists every flag", (t) => {
  for (const name of workerFlagNames) t.true(workerFlagHelp.includes(`--${name}`), name);
  t.is(workerFlagNames.length, 41);
});

test("--workloads lists what the engine server serves, each once", (t) => {
  t.deepEqual(workerConfigFromFlags({ workloads: "embedding, rerank,embedding" }), {
    workloads: [Workload.WORKLOAD_EMBEDDING, Workload.WORKLOAD_RERANK],
  });
  t.deepEqual(workerConfigFromFlags({ workloads: "COMPLETION" }), { workloads: [Workload.WORKLOAD_COMPLETION] });
  t.throws(() => workerConfigFromFlags({ workloads: "embedding,chat" }), {
    message: '--workloads: unknown workload "chat" (known: completion, embedding, rerank)',
  });
  t.throws(() => workerConfigFromFlags({ workloads: " , " }), { message: /--workloads needs at least one value/ });
});

test("--workloads is refused for adapters that know what they serve themselves", async (t) => {
  const workloads = [Workload.WORKLOAD_EMBEDDING];
  for (const adapter of ["tgi", "openai", "triton", "mock", "llamacpp-embedded"]) {
    await t.throwsAsync(
      startWorker({ adapter, engineUrl: "http://127.0.0.1:9", modelRef: "hf:org/m", engineModel: "m", workloads }, quietLogger),
      { message: `--workloads is for the llamacpp and vllm adapters; the ${adapter} adapter knows what it serves` },
      adapter,
    );
  }
});

test("--model-cache and --model-ttl map onto the config; a ttl must be a positive number of ms", (t) => {
  t.deepEqual(workerConfigFromFlags({ "model-cache": "/var/cache/models", "model-ttl": "600000" }), {
    modelCacheDir: "/var/cache/models",
    modelTtlMs: 600_000,
  });
  t.throws(() => workerConfigFromFlags({ "model-ttl": "0" }), { message: /--model-ttl must be an integer of at least 1/ });
  t.throws(() => workerConfigFromFlags({ "model-ttl": "10m" }), { message: /--model-ttl/ });
});
