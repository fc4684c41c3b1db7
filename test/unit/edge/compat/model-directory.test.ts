import test from "ava";
import { Engine, Workload } from "../../../../contracts/gen/llama_orch/v1/common.js";
import type { GetCapabilitiesResponse } from "../../../../contracts/gen/llama_orch/v1/pool.js";
import type { CoreClient } from "../../../../edge/core-client.js";
import { HttpError } from "../../../../edge/http-errors.js";
import { ModelDirectory } from "../../../../edge/compat/model-directory.js";

const served = (modelRef: string, engine: Engine, workloads: Workload[], ctxMax = 2048) => ({
  modelRef,
  engine,
  ctxMax,
  workloads,
  poolIds: ["p"],
  replicas: 1,
});

/** A core whose capabilities are `caps`, counting the calls. */
function fakeCore(caps: () => GetCapabilitiesResponse) {
  const core = { calls: 0, call: () => (core.calls++, Promise.resolve(caps())) };
  return core;
}

const cc = { correlationId: "c" };
const capabilities: GetCapabilitiesResponse = {
  engines: [],
  models: [],
  servedModels: [
    served("hf:org/chat", Engine.ENGINE_LLAMACPP, [Workload.WORKLOAD_COMPLETION], 4096),
    served("hf:org/both", Engine.ENGINE_LLAMACPP, [Workload.WORKLOAD_COMPLETION]),
    served("hf:org/both", Engine.ENGINE_VLLM, [Workload.WORKLOAD_EMBEDDING]),
  ],
};

test("a configured name resolves with its own ctx and pool, or the served model's ctx_max; unserved, it still resolves", async (t) => {
  const core = fakeCore(() => capabilities);
  const dir = new ModelDirectory(core as unknown as CoreClient, {
    chat: { engine: Engine.ENGINE_LLAMACPP, modelRef: "hf:org/chat" },
    pinned: { engine: Engine.ENGINE_LLAMACPP, modelRef: "hf:org/chat", ctx: 1024, pool: "gpu" },
    later: { engine: Engine.ENGINE_TGI, modelRef: "hf:org/later" },
  });
  t.deepEqual(await dir.resolve(cc, "chat", Workload.WORKLOAD_COMPLETION), {
    name: "chat",
    engine: Engine.ENGINE_LLAMACPP,
    modelRef: "hf:org/chat",
    ctx: 4096,
    pool: undefined,
  });
  t.like(await dir.resolve(cc, "pinned", Workload.WORKLOAD_COMPLETION), { ctx: 1024, pool: "gpu" });
  t.like(await dir.resolve(cc, "later", Workload.WORKLOAD_COMPLETION), { engine: Engine.ENGINE_TGI, ctx: 4096 });
  t.deepEqual(
    (await dir.list(cc)).map((m) => m.id),
    ["chat", "pinned", "hf:org/chat", "hf:org/both"],
    "a configured name whose model nothing serves is not listed",
  );
});

test("a served model_ref is a name; the engine serving the asked-for workload is chosen; anything else is 404 listing the names", async (t) => {
  const dir = new ModelDirectory(fakeCore(() => capabilities) as unknown as CoreClient, {});
  t.is((await dir.resolve(cc, "hf:org/both", Workload.WORKLOAD_EMBEDDING)).engine, Engine.ENGINE_VLLM);
  t.is((await dir.resolve(cc, "hf:org/both", Workload.WORKLOAD_COMPLETION)).engine, Engine.ENGINE_LLAMACPP);
  const err = await t.throwsAsync(dir.resolve(cc, "gpt-4o", Workload.WORKLOAD_COMPLETION), { instanceOf: HttpError });
  t.is(err.status, 404);
  t.is(err.message, 'model "gpt-4o" is not served here; available: hf:org/chat, hf:org/both');
  t.is(err.detail.field, "/model");
});

test("core's capabilities are asked at most once a second; a failed answer is not kept", async (t) => {
  let now = 0;
  let fail = true;
  const core = { calls: 0, call: () => (core.calls++, fail ? Promise.reject(new Error("core down")) : Promise.resolve(capabilities)) };
  const dir = new ModelDirectory(core as unknown as CoreClient, {}, () => now);
  await t.throwsAsync(dir.list(cc));
  fail = false;
  await dir.list(cc);
  await dir.list(cc);
  t.is(core.calls, 2, "the failure was asked again, the success reused");
  now = 1_001;
  await dir.list(cc);
  t.is(core.calls, 3);
});
