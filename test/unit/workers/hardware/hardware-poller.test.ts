// Discovery and polling through the real code path: the fake nvidia-smi is an
// executable on PATH, as the real one would be. PATH is per process, so these
// tests run one at a time.
import test, { type ExecutionContext } from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { totalmem, tmpdir } from "node:os";
import { join } from "node:path";
import { HardwarePoller, type HardwareSnapshot } from "../../../../workers/hardware/hardware-poller.js";
import {
  FAKE_A10,
  FAKE_L4,
  installFakeNvidiaSmi,
  NO_DRIVER,
  type FakeNvidiaSmi,
  type FakeNvidiaSmiState,
} from "../../../fakes/nvidia-smi-fake.js";
import { eventually } from "../helpers.js";

const MIB = 1024 * 1024;
const ORIGINAL_PATH = process.env.PATH;

test.afterEach.always(() => {
  process.env.PATH = ORIGINAL_PATH;
});

function fakeOnPath(t: ExecutionContext, state: FakeNvidiaSmiState): FakeNvidiaSmi {
  const smi = installFakeNvidiaSmi(state);
  t.teardown(() => smi.remove());
  process.env.PATH = smi.path;
  return smi;
}

/** A PATH with neither nvidia-smi nor rocm-smi on it. */
function emptyPath(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "llorch-empty-path-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function poller(t: ExecutionContext, options: Parameters<typeof HardwarePoller.start>[0] = {}): Promise<HardwarePoller> {
  const p = await HardwarePoller.start({ intervalMs: 60_000, ...options });
  t.teardown(() => p.stop());
  return p;
}

test.serial("nvidia-smi on PATH makes a CUDA replica: its GPUs in bytes and percent", async (t) => {
  fakeOnPath(t, { gpus: [FAKE_A10, FAKE_L4] });
  const s = (await poller(t)).snapshot();
  t.is(s.kind, "cuda");
  t.is(s.tool, "nvidia-smi");
  t.is(s.error, undefined);
  t.deepEqual(s.lost, []);
  t.deepEqual(s.devices[0], {
    index: 0,
    uuid: FAKE_A10.uuid,
    name: "NVIDIA A10",
    memoryTotalBytes: 23028 * MIB,
    memoryUsedBytes: 1028 * MIB,
    memoryFreeBytes: 22000 * MIB,
    utilizationPercent: 7,
  });
  t.is(s.devices[1]?.memoryFreeBytes, 3000 * MIB);
});

test.serial("a GPU that goes away shows as lost, with what was last seen of it, until it comes back", async (t) => {
  const smi = fakeOnPath(t, { gpus: [FAKE_A10, FAKE_L4] });
  const p = await poller(t);
  const heard: HardwareSnapshot[] = [];
  p.onChange((s) => heard.push(s));
  smi.set({ gpus: [FAKE_A10] });
  const gone = await p.refresh();
  t.deepEqual(
    gone.devices.map((d) => d.uuid),
    [FAKE_A10.uuid],
  );
  t.deepEqual(
    gone.lost.map((d) => [d.uuid, d.memoryUsedBytes]),
    [[FAKE_L4.uuid, 20034 * MIB]],
  );
  t.is(heard.length, 1, "listeners hear the change");
  smi.set({ gpus: [FAKE_A10, FAKE_L4] });
  t.deepEqual((await p.refresh()).lost, []);
  t.is(heard.length, 2);
});

test.serial("a driver that fails: no devices, the tool's own words and the documented meaning of its exit code", async (t) => {
  const smi = fakeOnPath(t, { gpus: [FAKE_A10] });
  const p = await poller(t);
  smi.set({ gpus: [FAKE_A10], failure: NO_DRIVER });
  const s = await p.refresh();
  t.is(s.kind, "cuda", "still a CUDA replica: its GPUs are unusable, not absent");
  t.deepEqual(s.devices, []);
  t.deepEqual(
    s.lost.map((d) => d.index),
    [0],
  );
  t.regex(
    s.error ?? "",
    /^nvidia-smi exited with 9 \(NVIDIA driver is not loaded\): NVIDIA-SMI has failed because it couldn't communicate/,
  );
});

test.serial("a host whose only GPU tool fails at startup is still a CUDA replica, saying why it has no devices", async (t) => {
  fakeOnPath(t, { gpus: [] });
  const s = (await poller(t)).snapshot();
  t.is(s.kind, "cuda");
  t.regex(s.error ?? "", /exited with 6 \(a query to find an object was unsuccessful\): No devices were found/);
});

test.serial("a tool slower than the timeout fails the reading and is killed", async (t) => {
  const smi = fakeOnPath(t, { gpus: [FAKE_A10] });
  const p = await poller(t, { timeoutMs: 2_500 });
  smi.set({ gpus: [FAKE_A10], delayMs: 20_000 });
  const started = Date.now();
  const s = await p.refresh();
  t.true(Date.now() - started < 10_000);
  t.is(s.error, "nvidia-smi: no answer within 2500 ms");
  t.deepEqual(s.devices, []);
  const last = smi.runs().at(-1);
  t.is(last?.end, undefined, "the slow run never finished: it was killed");
});

test.serial("output the parser cannot read is a failed reading that says what was wrong", async (t) => {
  const smi = fakeOnPath(t, { gpus: [FAKE_A10] });
  const p = await poller(t);
  smi.set({ gpus: [], failure: { exitCode: 0, message: "Failed to initialize NVML: Driver/library version mismatch" } });
  t.regex((await p.refresh()).error ?? "", /nvidia-smi output line 1: 1 comma-separated fields, expected 7/);
});

test.serial("polls on its own, one run at a time; listeners hear changes, not every reading", async (t) => {
  const smi = fakeOnPath(t, { gpus: [FAKE_A10], delayMs: 100 });
  const p = await poller(t, { intervalMs: 20 });
  const heard: HardwareSnapshot[] = [];
  p.onChange((s) => heard.push(s));
  t.true(await eventually(() => smi.runs().length >= 4, 15_000), "several readings on the timer");
  t.deepEqual(heard, [], "nothing changed");
  const both = [p.refresh(), p.refresh()];
  t.is(both[0], both[1], "a refresh joins the reading in flight");
  await Promise.all(both);
  smi.set({ gpus: [{ ...FAKE_A10, memoryUsedMiB: 9000 }], delayMs: 100 });
  t.true(await eventually(() => heard.length === 1, 15_000), "the timer's reading sees the change");
  t.is(heard[0]?.devices[0]?.memoryUsedBytes, 9000 * MIB);
  p.stop();
  const runs = smi.runs();
  for (let i = 1; i < runs.length; i++) t.true(runs[i]!.start >= runs[i - 1]!.end!, `run ${i} started after run ${i - 1} ended`);
});

test.serial("neither nvidia-smi nor rocm-smi on PATH: a CPU replica with the host's RAM", async (t) => {
  process.env.PATH = emptyPath(t);
  const s = (await poller(t)).snapshot();
  t.is(s.kind, "cpu");
  t.is(s.tool, undefined);
  t.deepEqual(s.devices, []);
  t.is(s.ramTotalBytes, totalmem());
  t.true(s.ramFreeBytes > 0 && s.ramFreeBytes <= s.ramTotalBytes);
});

test.serial("a tool that leaves PATH after startup is a failed reading, not a change of kind", async (t) => {
  fakeOnPath(t, { gpus: [FAKE_A10] });
  const p = await poller(t);
  process.env.PATH = emptyPath(t);
  const s = await p.refresh();
  t.is(s.kind, "cuda");
  t.is(s.error, "nvidia-smi is not on PATH");
  t.is(s.lost.length, 1);
});
