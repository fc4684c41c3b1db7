import test from "ava";
import { Registry } from "prom-client";
import { maskedMemory, parseDeviceMask, resolveDeviceMask } from "../../../../workers/hardware/device-mask.js";
import { registerHardwareMetrics } from "../../../../workers/hardware/hardware-metrics.js";
import { HardwarePoller } from "../../../../workers/hardware/hardware-poller.js";
import { FAKE_A10, FAKE_L4, installFakeNvidiaSmi } from "../../../fakes/nvidia-smi-fake.js";

const MIB = 1024 * 1024;
const LABELS = { engine: "llamacpp", engine_version: "b4000-abc123", pool_id: "p", replica_id: "p-r1" };
const L = 'engine="llamacpp",engine_version="b4000-abc123",pool_id="p",replica_id="p-r1"';

function samples(text: string, name: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(`${name}{`));
}

test.serial("gpu_utilization and vram_used_bytes per device of the mask, with the contract's labels, from the polls", async (t) => {
  const smi = installFakeNvidiaSmi({ gpus: [FAKE_A10, FAKE_L4, { ...FAKE_A10, uuid: "GPU-00000000-1111-2222-3333-444444444444" }] });
  const path = process.env.PATH;
  process.env.PATH = smi.path;
  const poller = await HardwarePoller.start({ intervalMs: 60_000 });
  t.teardown(() => {
    poller.stop();
    process.env.PATH = path;
    smi.remove();
  });
  const mask = resolveDeviceMask(parseDeviceMask("0,1"), poller.snapshot());
  const registry = new Registry();
  registerHardwareMetrics(registry, { labels: () => LABELS, devices: () => maskedMemory(mask, poller.snapshot()).devices });

  let text = await registry.metrics();
  t.regex(text, /# TYPE gpu_utilization gauge/);
  t.regex(text, /# TYPE vram_used_bytes gauge/);
  t.deepEqual(samples(text, "gpu_utilization"), [`gpu_utilization{${L},device="0"} 0.07`, `gpu_utilization{${L},device="1"} 0.93`]);
  t.deepEqual(samples(text, "vram_used_bytes"), [
    `vram_used_bytes{${L},device="0"} ${1028 * MIB}`,
    `vram_used_bytes{${L},device="1"} ${20034 * MIB}`,
  ]);

  // The L4 stops reporting utilization, then falls off the bus.
  smi.set({ gpus: [FAKE_A10, { ...FAKE_L4, utilizationPercent: "[N/A]" }] });
  await poller.refresh();
  text = await registry.metrics();
  t.deepEqual(samples(text, "gpu_utilization"), [`gpu_utilization{${L},device="0"} 0.07`], "not reported is no sample, never 0");
  t.is(samples(text, "vram_used_bytes").length, 2);
  smi.set({ gpus: [FAKE_A10] });
  await poller.refresh();
  text = await registry.metrics();
  t.deepEqual(
    samples(text, "vram_used_bytes"),
    [`vram_used_bytes{${L},device="0"} ${1028 * MIB}`],
    "a device that went away has no sample",
  );
});

test("a CPU replica has no GPU series samples", async (t) => {
  const registry = new Registry();
  registerHardwareMetrics(registry, { labels: () => LABELS, devices: () => [] });
  const text = await registry.metrics();
  t.deepEqual([samples(text, "gpu_utilization"), samples(text, "vram_used_bytes")], [[], []]);
});
