import test from "ava";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GgufHeaderError } from "../../../../workers/gguf/gguf-header.js";
import { encodeGguf } from "../../../../workers/gguf/gguf-writer.js";
import { kvShapeOf, readModelMemory } from "../../../../workers/hardware/gguf-model-memory.js";
import { checkModelFit, kvBytesPerToken, MARGIN_PER_DEVICE_BYTES, type KvCacheShape } from "../../../../workers/hardware/model-fit.js";
import { parseDeviceMask, resolveDeviceMask } from "../../../../workers/hardware/device-mask.js";
import { HardwarePoller } from "../../../../workers/hardware/hardware-poller.js";
import { checkFitOnReplica } from "../../../../workers/hardware/replica-fit.js";
import { FAKE_A10, FAKE_L4, installFakeNvidiaSmi } from "../../../fakes/nvidia-smi-fake.js";
import { DemoModels } from "../../../support/demo-models.js";

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

const models = new DemoModels();
test.after.always(() => models.remove());

// Qwen2.5-0.5B's attention: 24 layers, 2 KV heads of 64 dimensions (14 query heads, embedding 896).
const QWEN_05B: KvCacheShape = { layers: 24, kvHeads: 2, keyLength: 64, valueLength: 64 };

test("KV bytes per token: layers × kv heads × (key + value dims) × bytes per element", (t) => {
  t.is(kvBytesPerToken(QWEN_05B), 24 * 2 * 128 * 2);
  t.is(kvBytesPerToken(QWEN_05B, 1), 24 * 2 * 128, "q8_0-sized elements");
  t.is(kvBytesPerToken({ layers: 3, kvHeads: [8, 0, 2], keyLength: 4, valueLength: 4 }), 10 * 8 * 2, "per-layer kv heads are summed");
});

test("llama.cpp's defaults fill what the metadata leaves out; no attention shape means no estimate", (t) => {
  t.deepEqual(kvShapeOf({ block_count: 24, embedding_length: 896, attention: { head_count: 14, head_count_kv: 2 } }), QWEN_05B);
  t.deepEqual(kvShapeOf({ block_count: 2, embedding_length: 64, attention: { head_count: 4 } }), {
    layers: 2,
    kvHeads: 4,
    keyLength: 16,
    valueLength: 16,
  });
  t.is(kvShapeOf({ block_count: 64, embedding_length: 2560 }), undefined, "a recurrent model (mamba) has no attention heads");
});

test("a model fits when weights + KV cache for every slot + margin are free, and the reason says of what", (t) => {
  const weightsBytes = 398 * MIB;
  const kvCacheBytes = kvBytesPerToken(QWEN_05B) * 4096 * 4;
  const needed = weightsBytes + kvCacheBytes + MARGIN_PER_DEVICE_BYTES;
  const ok = checkModelFit({ weightsBytes, kv: QWEN_05B, ctxPerSlot: 4096, slots: 4, freeBytes: needed, memory: "on GPU 0" });
  t.true(ok.fits);
  t.deepEqual([ok.neededBytes, ok.kvCacheBytes, ok.marginBytes], [needed, 192 * MIB, 1024 * MIB]);
  t.is(
    ok.reason,
    "needs 1.6 GiB (weights 398.0 MiB + KV cache 192.0 MiB for 4 slots × 4096 tokens at 2 bytes per element + margin 1.0 GiB) of 1.6 GiB free on GPU 0",
  );
  const short = checkModelFit({ weightsBytes, kv: QWEN_05B, ctxPerSlot: 4096, slots: 4, freeBytes: needed - 1, memory: "on GPU 0" });
  t.false(short.fits);
  t.regex(short.reason, /but only 1\.6 GiB is free on GPU 0: 1 B short$/);
});

test("the margin is per device; a model without attention metadata is weighed without a KV cache", (t) => {
  // 40 GiB of weights and 768 MiB of KV cache: 1 GiB of margin fits in 42 GiB, a margin on each of two GPUs does not.
  const request = { weightsBytes: 40 * GIB, kv: QWEN_05B, ctxPerSlot: 8192, slots: 8, freeBytes: 42 * GIB, memory: "on GPU 0,1" };
  t.true(checkModelFit({ ...request, devices: 1 }).fits);
  const two = checkModelFit({ ...request, devices: 2 });
  t.is(two.marginBytes, 2 * GIB);
  t.false(two.fits);
  t.regex(
    two.reason,
    /^needs 42\.8 GiB \(weights 40\.0 GiB \+ KV cache 768\.0 MiB .* \+ margin 2\.0 GiB\) but only 42\.0 GiB is free on GPU 0,1: 768\.0 MiB short$/,
  );
  const mamba = checkModelFit({ weightsBytes: 2 * GIB, kv: undefined, ctxPerSlot: 4096, slots: 1, freeBytes: 4 * GIB, memory: "in RAM" });
  t.true(mamba.fits);
  t.is(mamba.kvCacheBytes, 0);
  t.regex(mamba.reason, /no KV cache estimate \(the model has no attention metadata\)/);
  t.throws(() => checkModelFit({ weightsBytes: 1, kv: QWEN_05B, ctxPerSlot: 0, slots: 1, freeBytes: 1, memory: "in RAM" }), {
    instanceOf: RangeError,
    message: "ctxPerSlot must be a positive integer, got 0",
  });
});

test("a generated GGUF's memory facts: its file size as weights and the KV shape from its header", async (t) => {
  const path = models.write("fit-demo.gguf", { embeddingLength: 128, layers: 3, heads: 8, contextLength: 2048 });
  const memory = await readModelMemory(path);
  t.deepEqual(memory, {
    files: [path],
    weightsBytes: statSync(path).size,
    architecture: "llama",
    kv: { layers: 3, kvHeads: 8, keyLength: 16, valueLength: 16 },
    contextLength: 2048,
  });
  const perToken = 3 * 8 * 32 * 2;
  const verdict = checkModelFit({
    weightsBytes: memory.weightsBytes,
    kv: memory.kv,
    ctxPerSlot: 2048,
    slots: 2,
    freeBytes: 2 * GIB,
    memory: "in RAM",
  });
  t.is(verdict.kvCacheBytes, perToken * 2048 * 2);
  t.is(verdict.neededBytes, memory.weightsBytes + perToken * 4096 + MARGIN_PER_DEVICE_BYTES);
  t.true(verdict.fits);
});

test("a split GGUF weighs all its parts; a file that is not GGUF is refused before node-llama-cpp reads it", async (t) => {
  const first = join(models.dir, "big-00001-of-00002.gguf");
  const header = encodeGguf({
    metadata: [
      ["general.architecture", { type: "string", value: "llama" }],
      ["split.count", { type: "uint32", value: 2 }],
      ["llama.block_count", { type: "uint32", value: 2 }],
      ["llama.embedding_length", { type: "uint32", value: 64 }],
      ["llama.attention.head_count", { type: "uint32", value: 4 }],
    ],
    tensors: [],
  });
  writeFileSync(first, Buffer.concat(header));
  writeFileSync(join(models.dir, "big-00002-of-00002.gguf"), Buffer.alloc(4096));
  const memory = await readModelMemory(first);
  t.is(memory.files.length, 2);
  t.is(memory.weightsBytes, statSync(first).size + 4096);
  await t.throwsAsync(readModelMemory(models.writeBroken("broken.gguf")), { instanceOf: GgufHeaderError });
});

test.serial("on a replica: a generated model against its masked GPUs' free memory from nvidia-smi, refused with the reason", async (t) => {
  const smi = installFakeNvidiaSmi({ gpus: [FAKE_A10, FAKE_L4] });
  const path = process.env.PATH;
  process.env.PATH = smi.path;
  const poller = await HardwarePoller.start({ intervalMs: 60_000 });
  t.teardown(() => {
    poller.stop();
    process.env.PATH = path;
    smi.remove();
  });
  const model = await readModelMemory(models.write("replica-fit.gguf"));
  const l4 = resolveDeviceMask(parseDeviceMask("1"), poller.snapshot());
  const fits = checkFitOnReplica(model, l4, poller.snapshot(), { ctxPerSlot: 4096, slots: 4 });
  t.true(fits.fits);
  t.is(fits.freeBytes, 3000 * MIB);
  t.regex(fits.reason, /of 2\.9 GiB free on GPU 1$/);
  smi.set({ gpus: [FAKE_A10, { ...FAKE_L4, memoryUsedMiB: 22534 }] });
  const full = checkFitOnReplica(model, l4, await poller.refresh(), { ctxPerSlot: 4096, slots: 4 });
  t.false(full.fits);
  t.regex(full.reason, /but only 500\.0 MiB is free on GPU 1: .* short$/);
  smi.set({ gpus: [FAKE_A10] });
  const gone = checkFitOnReplica(model, l4, await poller.refresh(), { ctxPerSlot: 4096, slots: 4 });
  t.false(gone.fits);
  t.regex(gone.reason, /but only 0 B is free on GPU 1 \(GPU 1 not listed\)/);
  const cpu = checkFitOnReplica(model, { kind: "cpu", indices: [], uuids: [], text: "cpu", explicit: false }, poller.snapshot(), {
    ctxPerSlot: 512,
    slots: 1,
  });
  t.regex(cpu.reason, / free in RAM$/);
});
