import test from "ava";
import fc from "fast-check";
import type { ResolvedMask } from "../../../workers/hardware/device-mask.js";
import type { ModelMemory } from "../../../workers/hardware/gguf-model-memory.js";
import type { HardwareSnapshot } from "../../../workers/hardware/hardware-poller.js";
import { planSwitch, type SwitchFacts } from "../../../workers/sidecar/switch-plan.js";

const GIB = 2 ** 30;
const MIB = 2 ** 20;
const GPU0: ResolvedMask = { kind: "cuda", indices: [0], uuids: ["GPU-0"], text: "0", explicit: true };

/** One GPU with `freeGiB` free of 24 GiB. */
function gpu(freeGiB: number): HardwareSnapshot {
  const free = freeGiB * GIB;
  return {
    kind: "cuda",
    tool: "nvidia-smi",
    devices: [
      { index: 0, uuid: "GPU-0", name: "NVIDIA L4", memoryTotalBytes: 24 * GIB, memoryUsedBytes: 24 * GIB - free, memoryFreeBytes: free },
    ],
    lost: [],
    ramTotalBytes: 64 * GIB,
    ramFreeBytes: 32 * GIB,
    at: 0,
  };
}

/** A GGUF of `weightsGiB` whose KV cache takes 128 KiB a token (32 layers × 8 kv heads × (128 + 128) × f16). */
function gguf(weightsGiB: number, contextLength?: number): ModelMemory {
  return {
    files: ["/m.gguf"],
    weightsBytes: weightsGiB * GIB,
    architecture: "llama",
    kv: { layers: 32, kvHeads: 8, keyLength: 128, valueLength: 128 },
    ...(contextLength === undefined ? {} : { contextLength }),
  };
}

// 4096 tokens × 1 slot × 128 KiB = 512 MiB of KV cache, plus the 1 GiB margin: a model needs its weights + 1.5 GiB.
const facts = (over: Partial<SwitchFacts>): SwitchFacts => ({
  next: { ref: "hf:o/new/m.gguf", memory: gguf(4) },
  running: { ref: "hf:o/old/m.gguf", memory: gguf(4) },
  ctxPerSlot: 4096,
  slots: 1,
  mask: GPU0,
  snapshot: gpu(12),
  ...over,
});

test("with room for both, the new model starts beside the running one", (t) => {
  const plan = planSwitch(facts({ snapshot: gpu(6) }));
  t.is(plan.action, "beside");
  t.is(
    plan.reason,
    "hf:o/new/m.gguf fits beside hf:o/old/m.gguf: it needs 5.5 GiB (weights 4.0 GiB + KV cache 512.0 MiB for 1 slot × 4096 tokens at 2 bytes per element + margin 1.0 GiB) of 6.0 GiB free on GPU 0",
  );
});

test("without room for both, the running model is stopped first when what it frees makes room", (t) => {
  const plan = planSwitch(facts({ snapshot: gpu(2) }));
  t.is(plan.action, "stop-first");
  t.regex(
    plan.reason,
    /^hf:o\/new\/m\.gguf does not fit beside hf:o\/old\/m\.gguf \(it needs 5\.5 GiB .* but only 2\.0 GiB is free on GPU 0: 3\.5 GiB short\), but does once hf:o\/old\/m\.gguf frees 4\.5 GiB, so hf:o\/old\/m\.gguf is stopped first$/,
  );
});

test("a model that cannot fit even alone is refused, saying what is short", (t) => {
  const plan = planSwitch(facts({ next: { ref: "hf:o/big/m.gguf", memory: gguf(20) }, snapshot: gpu(2) }));
  t.is(plan.action, "refuse");
  t.regex(
    plan.reason,
    /^hf:o\/big\/m\.gguf cannot fit, even with hf:o\/old\/m\.gguf stopped: it needs 21\.5 GiB .* but only 6\.5 GiB is free on GPU 0: 15\.0 GiB short$/,
  );
  t.is(planSwitch(facts({ running: undefined, next: { ref: "hf:o/big/m.gguf", memory: gguf(30) } })).action, "refuse");
});

test("a command without {port} always stops first, when the new model fits alone", (t) => {
  const besideBlocked = "the engine command has no {port}: a second instance would need the first one's port";
  const plan = planSwitch(facts({ snapshot: gpu(20), besideBlocked }));
  t.is(plan.action, "stop-first");
  t.regex(
    plan.reason,
    /^the engine command has no \{port\}: .*, so hf:o\/old\/m\.gguf is stopped first \(hf:o\/new\/m\.gguf needs 5\.5 GiB/,
  );
  t.is(planSwitch(facts({ next: { ref: "n", memory: gguf(40) }, besideBlocked })).action, "refuse");
});

test("unknown memory: a new model that is not a GGUF file replaces the running one; a first start is not checked", (t) => {
  const plan = planSwitch(facts({ next: { ref: "hf:o/repo", memory: undefined }, snapshot: gpu(100) }));
  t.is(plan.action, "stop-first");
  t.is(plan.reason, "the memory hf:o/repo needs is unknown (not a GGUF file), so hf:o/old/m.gguf is stopped before it starts");
  t.is(planSwitch(facts({ next: { ref: "hf:o/repo", memory: undefined }, running: undefined })).action, "start");
  const unknownRunning = planSwitch(facts({ running: { ref: "hf:o/old", memory: undefined }, snapshot: gpu(2) }));
  t.is(unknownRunning.action, "stop-first");
  t.regex(unknownRunning.reason, /what hf:o\/old frees is unknown, so it is stopped first$/);
});

test("a first start fits or is refused; the context is capped at what the model was trained on", (t) => {
  t.is(planSwitch(facts({ running: undefined, snapshot: gpu(5.5) })).action, "start");
  t.is(planSwitch(facts({ running: undefined, snapshot: gpu(5.4) })).action, "refuse");
  // Trained on 1024 tokens: 128 MiB of KV cache instead of 512 MiB.
  const short = planSwitch(facts({ running: undefined, next: { ref: "n", memory: gguf(4, 1024) }, snapshot: gpu(5.2) }));
  t.is(short.action, "start");
  t.regex(short.reason, /KV cache 128\.0 MiB for 1 slot × 1024 tokens/);
});

test("on a CPU replica the plan reads RAM", (t) => {
  const cpu: ResolvedMask = { kind: "cpu", indices: [], uuids: [], text: "cpu", explicit: false };
  const plan = planSwitch(facts({ mask: cpu, snapshot: { ...gpu(0), kind: "cpu", devices: [], ramFreeBytes: 100 * MIB } }));
  t.is(plan.action, "refuse");
  t.regex(plan.reason, /free in RAM/);
});

test("property: more free memory never turns a beside into a stop-first or a start into a refusal", (t) => {
  const rank = { beside: 0, start: 0, "stop-first": 1, refuse: 2 } as const;
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 40 }),
      fc.integer({ min: 0, max: 40 }),
      fc.integer({ min: 0, max: 12 }),
      fc.boolean(),
      (free, extra, weights, first) => {
        const base = facts({ next: { ref: "n", memory: gguf(weights) }, ...(first ? { running: undefined } : {}) });
        const less = planSwitch({ ...base, snapshot: gpu(free) });
        const more = planSwitch({ ...base, snapshot: gpu(free + extra) });
        return rank[more.action] <= rank[less.action];
      },
    ),
  );
  t.pass();
});
