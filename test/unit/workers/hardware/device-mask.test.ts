import test from "ava";
import type { GpuDevice } from "../../../../workers/hardware/gpu-device.js";
import { HardwarePoller, type HardwareSnapshot } from "../../../../workers/hardware/hardware-poller.js";
import {
  DeviceMaskError,
  engineEnvironment,
  maskedMemory,
  parseDeviceMask,
  resolveDeviceMask,
  withEngineEnvironment,
} from "../../../../workers/hardware/device-mask.js";
import { FAKE_A10, FAKE_L4, installFakeNvidiaSmi } from "../../../fakes/nvidia-smi-fake.js";

const GIB = 1024 ** 3;
const UUID0 = "GPU-5c4e3a1b-7d2f-4e8a-9b6c-0a1b2c3d4e5f";
const UUID1 = "GPU-9f8e7d6c-5b4a-4321-8765-43210fedcba9";
const UUID2 = "GPU-0a0b0c0d-1111-2222-3333-444455556666";

function gpu(index: number, uuid: string, totalGib: number, freeGib: number): GpuDevice {
  return {
    index,
    uuid,
    name: "NVIDIA A10",
    memoryTotalBytes: totalGib * GIB,
    memoryUsedBytes: (totalGib - freeGib) * GIB,
    memoryFreeBytes: freeGib * GIB,
    utilizationPercent: 10,
  };
}

function snapshot(patch: Partial<HardwareSnapshot> = {}): HardwareSnapshot {
  return {
    kind: "cuda",
    tool: "nvidia-smi",
    devices: [gpu(0, UUID0, 24, 20), gpu(1, UUID1, 24, 4), gpu(2, UUID2, 80, 70)],
    lost: [],
    ramTotalBytes: 64 * GIB,
    ramFreeBytes: 32 * GIB,
    at: 0,
    ...patch,
  };
}

test("a mask is indices or nvidia-smi UUIDs, comma-separated; empty means every device", (t) => {
  t.deepEqual(parseDeviceMask("0,1"), [{ index: 0 }, { index: 1 }]);
  t.deepEqual(parseDeviceMask(` 2 , ${UUID0.toUpperCase().replace("GPU", "GPU")} `), [{ index: 2 }, { uuid: UUID0.toLowerCase() }]);
  t.deepEqual(parseDeviceMask(""), []);
  for (const [text, message] of [
    ["0,,1", /entry 2 \(""\) is neither a GPU index/],
    ["-1", /entry 1 \("-1"\)/],
    ["cuda:0", /neither a GPU index .* nor a GPU UUID as nvidia-smi -L prints it/],
    ["1,1", /1 is named twice/],
  ] as const) {
    t.throws(() => parseDeviceMask(text), { instanceOf: DeviceMaskError, message }, text);
  }
});

test("a mask resolves to its devices in its own order, by index or UUID", (t) => {
  const mask = resolveDeviceMask(parseDeviceMask(`2,${UUID0}`), snapshot());
  t.deepEqual(mask, { kind: "cuda", indices: [2, 0], uuids: [UUID2, UUID0], text: "2,0", explicit: true });
  const all = resolveDeviceMask([], snapshot());
  t.deepEqual(all.indices, [0, 1, 2]);
  t.is(all.text, "0,1,2", "without a mask the replica reports every device, never an empty mask");
  t.false(all.explicit);
});

test("a mask naming a device that is not there is an error at startup that lists what is", (t) => {
  t.throws(() => resolveDeviceMask(parseDeviceMask("0,3"), snapshot()), {
    instanceOf: DeviceMaskError,
    message: `--device-mask 0,3: there is no GPU 3; nvidia-smi lists 0 (NVIDIA A10, ${UUID0}), 1 (NVIDIA A10, ${UUID1}), 2 (NVIDIA A10, ${UUID2})`,
  });
  t.throws(() => resolveDeviceMask(parseDeviceMask("GPU-deadbeef-0000"), snapshot()), { message: /there is no GPU gpu-deadbeef-0000/ });
  t.throws(() => resolveDeviceMask(parseDeviceMask(`1,${UUID1}`), snapshot()), {
    message: /GPU 1 is named twice \(by index and by UUID\)/,
  });
  t.throws(() => resolveDeviceMask(parseDeviceMask("0"), snapshot({ kind: "cpu", devices: [], tool: undefined })), {
    message: "--device-mask 0: this host has no GPU the sidecar can see (neither nvidia-smi nor rocm-smi is on PATH)",
  });
  t.throws(
    () =>
      resolveDeviceMask(parseDeviceMask("0"), snapshot({ devices: [], error: "nvidia-smi exited with 9 (NVIDIA driver is not loaded)" })),
    {
      message: "--device-mask 0: nvidia-smi exited with 9 (NVIDIA driver is not loaded)",
    },
  );
  const rocm = snapshot({ kind: "rocm", tool: "rocm-smi", devices: [{ ...gpu(0, "", 64, 60), name: "card0" }] });
  t.throws(() => resolveDeviceMask(parseDeviceMask(UUID0), rocm), {
    message: /rocm-smi reports no UUIDs on this host; name devices by index \(0 \(card0\)\)/,
  });
});

test("a CPU replica says cpu and reports RAM instead of VRAM", (t) => {
  const cpu = snapshot({ kind: "cpu", tool: undefined, devices: [] });
  const mask = resolveDeviceMask([], cpu);
  t.is(mask.text, "cpu");
  t.deepEqual(maskedMemory(mask, cpu), { kind: "cpu", devices: [], missing: [], totalBytes: 64 * GIB, freeBytes: 32 * GIB });
  t.deepEqual(engineEnvironment(mask), {});
});

test("VRAM total and free are those of the mask's devices only", (t) => {
  const mask = resolveDeviceMask(parseDeviceMask("0,1"), snapshot());
  const m = maskedMemory(mask, snapshot());
  t.is(m.totalBytes, 48 * GIB);
  t.is(m.freeBytes, 24 * GIB);
  t.deepEqual(
    m.devices.map((d) => d.index),
    [0, 1],
  );
  t.is(m.incomplete, undefined);
});

test("a masked GPU that goes away is missing and counts nothing; one without figures counts none free", (t) => {
  const mask = resolveDeviceMask(parseDeviceMask("0,1"), snapshot());
  const later = snapshot({ devices: [gpu(0, UUID0, 24, 20), gpu(2, UUID2, 80, 70)], lost: [gpu(1, UUID1, 24, 4)] });
  const m = maskedMemory(mask, later);
  t.deepEqual(m.missing, [1]);
  t.is(m.freeBytes, 20 * GIB);
  t.is(m.incomplete, "GPU 1 not listed");
  // Indices can shift when a GPU falls off the bus: a UUID mask follows the device, not the number.
  const shifted = snapshot({ devices: [{ ...gpu(0, UUID1, 24, 4) }] });
  t.deepEqual(maskedMemory(mask, shifted).missing, [0]);
  const failing = maskedMemory(mask, snapshot({ devices: [], error: "nvidia-smi: no answer within 10000 ms" }));
  t.is(failing.incomplete, "GPU 0, 1 not listed (nvidia-smi: no answer within 10000 ms)");
  const noFigures = snapshot({ devices: [{ index: 0, uuid: UUID0, name: "NVIDIA GB10" }, gpu(1, UUID1, 24, 4)] });
  const n = maskedMemory(mask, noFigures);
  t.is(n.freeBytes, 4 * GIB);
  t.is(n.incomplete, "GPU 0 reports no memory figures");
});

test("a supervised engine sees exactly the mask's GPUs: CUDA by UUID, ROCm through ROCr", (t) => {
  const mask = resolveDeviceMask(parseDeviceMask("2,0"), snapshot());
  t.deepEqual(engineEnvironment(mask), { CUDA_VISIBLE_DEVICES: `${UUID2},${UUID0}` });
  t.deepEqual(engineEnvironment(resolveDeviceMask([], snapshot())), {}, "no mask: the engine keeps what the sidecar was given");
  const rocm = snapshot({ kind: "rocm", tool: "rocm-smi", devices: [gpu(0, "", 64, 60), gpu(1, "", 64, 60)] });
  const env = engineEnvironment(resolveDeviceMask(parseDeviceMask("1"), rocm));
  t.deepEqual(env, { ROCR_VISIBLE_DEVICES: "1", HIP_VISIBLE_DEVICES: undefined, CUDA_VISIBLE_DEVICES: undefined });
  const child = withEngineEnvironment({ PATH: "/bin", HIP_VISIBLE_DEVICES: "0", CUDA_VISIBLE_DEVICES: "0" }, env);
  t.deepEqual(
    child,
    { PATH: "/bin", ROCR_VISIBLE_DEVICES: "1" },
    "inherited HIP/CUDA selections would select again among the masked devices",
  );
});

test.serial("through nvidia-smi: a mask of a missing GPU fails at startup; the masked figures follow the polls", async (t) => {
  const smi = installFakeNvidiaSmi({ gpus: [FAKE_A10, FAKE_L4] });
  const path = process.env.PATH;
  process.env.PATH = smi.path;
  const poller = await HardwarePoller.start({ intervalMs: 60_000 });
  t.teardown(() => {
    poller.stop();
    process.env.PATH = path;
    smi.remove();
  });
  t.throws(() => resolveDeviceMask(parseDeviceMask("1,2"), poller.snapshot()), {
    message: /^--device-mask 1,2: there is no GPU 2; nvidia-smi lists 0 \(NVIDIA A10/,
  });
  const mask = resolveDeviceMask(parseDeviceMask("1"), poller.snapshot());
  t.is(maskedMemory(mask, poller.snapshot()).freeBytes, 3000 * 1024 * 1024);
  smi.set({ gpus: [FAKE_A10, { ...FAKE_L4, memoryUsedMiB: 23034 }] });
  t.is(maskedMemory(mask, await poller.refresh()).freeBytes, 0, "the L4 filled up");
  smi.set({ gpus: [FAKE_A10] });
  const gone = maskedMemory(mask, await poller.refresh());
  t.deepEqual([gone.missing, gone.totalBytes], [[1], 0]);
});
