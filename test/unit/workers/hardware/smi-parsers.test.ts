import test from "ava";
import { freeBytesOf, SmiOutputError } from "../../../../workers/hardware/gpu-device.js";
import { NVIDIA_SMI_ARGS, parseNvidiaSmiCsv } from "../../../../workers/hardware/nvidia-smi.js";
import { parseRocmSmiJson } from "../../../../workers/hardware/rocm-smi.js";

const MIB = 1024 * 1024;

// The shape `--format=csv,noheader,nounits` prints: ", " between fields, MiB and percent without units.
const TWO_GPUS = [
  "0, GPU-8b89b58e-b427-108d-ac50-06138d78fe78, NVIDIA RTX PRO 6000 Blackwell Server Edition, 97887, 1234, 96181, 42",
  "1, GPU-03a041b7-8abf-360a-d1a2-dfd70188cd5f, NVIDIA RTX PRO 6000 Blackwell Server Edition, 97887, 0, 97415, 0",
  "",
].join("\n");

test("the query is the issue's, in the documented CSV form without header or units", (t) => {
  t.deepEqual(NVIDIA_SMI_ARGS, [
    "--query-gpu=index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu",
    "--format=csv,noheader,nounits",
  ]);
});

test("nvidia-smi rows become devices in bytes and percent", (t) => {
  const [a, b] = parseNvidiaSmiCsv(TWO_GPUS);
  t.deepEqual(a, {
    index: 0,
    uuid: "GPU-8b89b58e-b427-108d-ac50-06138d78fe78",
    name: "NVIDIA RTX PRO 6000 Blackwell Server Edition",
    memoryTotalBytes: 97887 * MIB,
    memoryUsedBytes: 1234 * MIB,
    memoryFreeBytes: 96181 * MIB,
    utilizationPercent: 42,
  });
  t.is(b?.index, 1);
  t.is(b?.memoryUsedBytes, 0);
});

test("a figure the device does not report ([N/A], [Not Supported]) is unknown, never zero", (t) => {
  const [d] = parseNvidiaSmiCsv("0, GPU-11111111-2222-3333-4444-555555555555, NVIDIA GB10, [N/A], [N/A], [N/A], [Not Supported]\r\n");
  t.is(d?.memoryTotalBytes, undefined);
  t.is(d?.memoryFreeBytes, undefined);
  t.is(d?.utilizationPercent, undefined);
  t.is(freeBytesOf(d!), undefined);
  t.is(freeBytesOf({ ...d!, memoryTotalBytes: 10, memoryUsedBytes: 4 }), 6, "free from total minus used when only that is known");
});

test("a name with a comma keeps it: the fields around it are fixed", (t) => {
  const [d] = parseNvidiaSmiCsv("3, GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, Tesla T4, rev A, 15360, 0, 15360, 0");
  t.is(d?.name, "Tesla T4, rev A");
  t.is(d?.index, 3);
});

test("no output is no device; anything else unreadable is an error naming its line", (t) => {
  t.deepEqual(parseNvidiaSmiCsv(""), []);
  const cases: [string, RegExp][] = [
    ["0, GPU-x, A10, 23028, 1028", /line 1: 5 comma-separated fields, expected 7/],
    [`${TWO_GPUS}x, GPU-1, A10, 1, 1, 0, 0`, /line 3: index "x" is not a GPU index/],
    ["0, [N/A], A10, 1, 1, 0, 0", /line 1: no UUID/],
    ["0, GPU-1, A10, 23028 MiB, 1, 0, 0", /line 1: memory.total is "23028 MiB", not a number/],
    ["0, GPU-1, A10, 1, 1, 0, 0\n0, GPU-2, A10, 1, 1, 0, 0", /line 2: GPU 0 is listed twice/],
    ["Failed to initialize NVML: Driver/library version mismatch", /fields, expected 7/],
  ];
  for (const [output, message] of cases) t.throws(() => parseNvidiaSmiCsv(output), { instanceOf: SmiOutputError, message }, output);
});

test("rocm-smi JSON: cards by index in bytes, GPU use in percent, what the library could not read left out", (t) => {
  const json = JSON.stringify({
    card1: { "VRAM Total Memory (B)": "68702699520", "VRAM Total Used Memory (B)": "10993664", "GPU use (%)": "0" },
    card0: { "VRAM Total Memory (B)": "68702699520", "VRAM Total Used Memory (B)": "28668264448", "GPU use (%)": "87" },
    card2: { "VRAM Total Memory (B)": "17163091968" },
    system: { "Driver version": "6.8.5" },
  });
  const devices = parseRocmSmiJson(json);
  t.deepEqual(
    devices.map((d) => d.index),
    [0, 1, 2],
  );
  t.deepEqual(devices[0], {
    index: 0,
    uuid: "",
    name: "card0",
    memoryTotalBytes: 68702699520,
    memoryUsedBytes: 28668264448,
    memoryFreeBytes: 68702699520 - 28668264448,
    utilizationPercent: 87,
  });
  t.is(devices[2]?.memoryUsedBytes, undefined);
  t.is(devices[2]?.memoryFreeBytes, undefined);
  t.is(devices[2]?.utilizationPercent, undefined);
});

test("rocm-smi output that is not its JSON is an error", (t) => {
  t.throws(() => parseRocmSmiJson("ERROR: GPU[0] : Unable to read VRAM"), { instanceOf: SmiOutputError, message: /did not print JSON/ });
  t.throws(() => parseRocmSmiJson("[1]"), { instanceOf: SmiOutputError, message: /not an object/ });
  t.throws(() => parseRocmSmiJson(JSON.stringify({ card0: { "GPU use (%)": 5 } })), {
    instanceOf: SmiOutputError,
    message: /card0: GPU use/,
  });
});
