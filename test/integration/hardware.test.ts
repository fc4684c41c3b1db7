import test from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import { FAKE_A10, FAKE_L4, installFakeNvidiaSmi, type FakeNvidiaSmiState } from "../fakes/nvidia-smi-fake.js";
import { api, stream, taskBody } from "../support/http.js";
import type { Json } from "../support/json.js";
import { TestSystem } from "../support/system.js";

// Two sidecars on one "host" with two GPUs (a fake nvidia-smi on their PATH,
// printing what the real tool prints): each supervises a llama.cpp engine
// process on its own GPU. Everything below reads what the fake reports,
// through the same code a real nvidia-smi feeds.

const MIB = 2 ** 20;
const A10 = { ...FAKE_A10, memoryTotalMiB: 23028, memoryUsedMiB: 1028 }; // 22000 MiB free
const L4 = { ...FAKE_L4, memoryTotalMiB: 23034, memoryUsedMiB: 20034 }; // 3000 MiB free
const smi = installFakeNvidiaSmi({ gpus: [A10, L4] });
const dir = mkdtempSync(join(tmpdir(), "llorch-hw-"));
const script = join(projectRoot(), "test", "fakes", "llamacpp-fake-process.ts");

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function gpuWorker(replica: string, mask: string) {
  const port = await freePort();
  return {
    pool: "gpu",
    replica,
    engine: "llamacpp",
    model: "hf:org/model",
    env: { PATH: smi.path },
    flags: {
      adapter: "llamacpp",
      "engine-url": `http://127.0.0.1:${port}`,
      "engine-cmd": `${process.execPath} --import tsx ${script} --port ${port} --record-env ${join(dir, `${replica}.env.json`)}`,
      "device-mask": mask,
      "gpu-poll-ms": "200",
      "metrics-port": "0",
    },
  };
}

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({ workers: [await gpuWorker("gpu-a10", "0"), await gpuWorker("gpu-l4", "1")] });
});
test.after.always(async () => {
  await sys?.stop();
  smi.remove();
  rmSync(dir, { recursive: true, force: true });
});

type T = Parameters<typeof api>[0];
const health = async (t: T) => (await api(t, sys.edgeUrl, "GET", "/v1/pools/gpu/health")).json;
const replicaOf = (h: Json, id: string): Json => (h.metrics.replicas as Json[]).find((r) => r.replica_id === id);

async function until<V>(what: string, probe: () => Promise<V | undefined>): Promise<V> {
  for (let i = 0; i < 200; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function placedOn(t: T): Promise<string> {
  const body = taskBody({ model_ref: "hf:org/model", max_tokens: 2 });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body["task_id"]}/stream`);
  await s.done;
  return s.events.find((e) => e.event === "metrics" && e.data.replica_id)!.data.replica_id as string;
}

test.serial("each supervised engine sees only its own GPU", (t) => {
  const env = (replica: string) => JSON.parse(readFileSync(join(dir, `${replica}.env.json`), "utf8")) as Record<string, string | null>;
  t.is(env("gpu-a10")["CUDA_VISIBLE_DEVICES"], A10.uuid);
  t.is(env("gpu-l4")["CUDA_VISIBLE_DEVICES"], L4.uuid);
});

test.serial("pool health shows each replica's device mask and the VRAM of its device only", async (t) => {
  const h = await health(t);
  t.like(replicaOf(h, "gpu-a10"), { device_mask: "0", vram_total_bytes: 23028 * MIB, vram_free_bytes: 22000 * MIB });
  t.like(replicaOf(h, "gpu-l4"), { device_mask: "1", vram_total_bytes: 23034 * MIB, vram_free_bytes: 3000 * MIB });
});

test.serial("placement ranks by the free VRAM nvidia-smi reports now, and follows it when it changes", async (t) => {
  t.is(await placedOn(t), "gpu-a10");
  smi.set({
    gpus: [
      { ...A10, memoryUsedMiB: 22528 },
      { ...L4, memoryUsedMiB: 1034 },
    ],
  } satisfies FakeNvidiaSmiState);
  // Each sidecar reads the GPUs on its own schedule: wait until core has both new figures.
  await until("the new figures", async () => {
    const h = await health(t);
    return replicaOf(h, "gpu-l4").vram_free_bytes === 22000 * MIB && replicaOf(h, "gpu-a10").vram_free_bytes === 500 * MIB
      ? true
      : undefined;
  });
  t.is(await placedOn(t), "gpu-l4");
  const placed = sys.logsOf(sys.core, '"event":"placed"').at(-1)!;
  t.like(placed, { replica_id: "gpu-l4", placement_why: "most_free_vram" });
});

test.serial("the sidecar exports gpu_utilization and vram_used_bytes per device, with the contract's labels", async (t) => {
  const text = await (
    await fetch(
      `http://${
        sys
          .worker("gpu-l4")
          .proc.lines.map((l) => JSON.parse(l) as { metrics_address?: string })
          .find((l) => l.metrics_address)!.metrics_address
      }/metrics`,
    )
  ).text();
  t.regex(text, /^gpu_utilization\{engine="llamacpp",engine_version="[^"]*",pool_id="gpu",replica_id="gpu-l4",device="1"\} 0\.93$/m);
  t.regex(text, /^vram_used_bytes\{engine="llamacpp",engine_version="[^"]*",pool_id="gpu",replica_id="gpu-l4",device="1"\} \d+$/m);
  t.notRegex(text, /device="0"/, "only the replica's own GPU");
});

test.serial("a GPU that goes away leaves its replica with no free VRAM reported, and the other one takes the work", async (t) => {
  smi.set({ gpus: [{ ...L4, index: 1 }] });
  await until("the A10 gone", async () => (replicaOf(await health(t), "gpu-a10").vram_free_bytes === 0 ? true : undefined));
  t.is(await placedOn(t), "gpu-l4");
  t.true(sys.logsOf(sys.worker("gpu-a10").proc, '"event":"gpu_lost"').length > 0);
});
