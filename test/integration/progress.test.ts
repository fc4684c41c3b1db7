import test, { type ExecutionContext } from "ava";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { FakeSidecar } from "../fakes/fake-sidecar.js";
import { launchChromium, noBrowserReason } from "../support/browser.js";
import { api } from "../support/http.js";
import type { Json } from "../support/json.js";
import { LLORCH, TestSystem } from "../support/system.js";

// Long operations as an operator sees them: a pool loading a model, with a
// bar in `llorch status` and in the console, and `llorch verify` following a
// catalog verification to its outcome.

const run = promisify(execFile);
const MIB = 1024 * 1024;

async function llorch(sys: TestSystem, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [LLORCH, ...args, "--edge", sys.edgeUrl], { timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A system whose one replica's reload the test holds at 25% of a download; `release` lets it finish. */
async function reloadingSystem(t: ExecutionContext): Promise<{ sys: TestSystem; release: () => void }> {
  const sys = await TestSystem.start({ workers: [] });
  t.teardown(() => sys.stop());
  const fake = await FakeSidecar.start({ core: sys.coreAddress, pool: "p", replica: "r1", modelRef: "hf:org/a/a.gguf" });
  t.teardown(() => fake.close());
  await sys.waitForReadyReplicas(1);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  fake.onLoadModel = () => held;
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/pools/p/reload", { body: { new_model_ref: "hf:org/b/b.gguf" } })).status, 202);
  fake.report(
    { ready: false, lastError: "downloading hf:org/b/b.gguf: 25%" },
    {
      progress: { phase: "downloading", bytesDone: 100 * MIB, bytesTotal: 400 * MIB, bytesPerSecond: 5 * MIB, subject: "b.gguf" },
      wakesOnSubmit: false,
    },
  );
  for (let i = 0; i < 200; i++) {
    const h = (await api(t, sys.edgeUrl, "GET", "/v1/pools/p/health")).json;
    if (h.metrics.reload_progress?.bytes_done === 100 * MIB) return { sys, release };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("the pool never showed the reload's progress");
}

test("llorch status draws a bar for a pool reloading and its replica loading, and --json carries the progress", async (t) => {
  const { sys, release } = await reloadingSystem(t);
  const status = await llorch(sys, "status");
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, /^IN PROGRESS$/m);
  t.regex(status.stdout, /^pool p \(reload\) +downloading b\.gguf \[#####\.{15}\] +25% +100\.0 MiB \/ 400\.0 MiB +5\.0 MiB\/s$/m);
  t.regex(status.stdout, /^replica r1 +downloading b\.gguf \[#####\.{15}\] +25%/m);
  const json = JSON.parse((await llorch(sys, "status", "--json")).stdout) as { pools: Json[] };
  t.like(json.pools[0], { id: "p", reload_progress: { phase: "downloading", bytes_done: 100 * MIB, bytes_total: 400 * MIB } });
  release();
  for (let i = 0; i < 200 && (await api(t, sys.edgeUrl, "GET", "/v1/pools/p/health")).json.metrics.reload_state !== "idle"; i++)
    await new Promise((r) => setTimeout(r, 25));
  t.false((await llorch(sys, "status")).stdout.includes("IN PROGRESS"), "no bar once the load is done");
});

test("llorch verify follows a catalog verification to its outcome: 0 when it passes, 1 and the reason when it fails", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "llorch-verify-"));
  // Catalog verify reads only under --model-roots (and the model cache).
  const sys = await TestSystem.start({ workers: [], coreFlags: { "model-roots": dir } });
  t.teardown(() => sys.stop());
  const data = Buffer.alloc(8 * MIB, 3);
  writeFileSync(join(dir, "good.gguf"), data);
  writeFileSync(join(dir, "bad.gguf"), Buffer.alloc(MIB, 4));
  const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
  for (const id of ["good", "bad"])
    t.is(
      (await api(t, sys.edgeUrl, "POST", "/v1/catalog/models", { body: { id, digest, source_url: `file:${join(dir, `${id}.gguf`)}` } }))
        .status,
      201,
    );

  const good = await llorch(sys, "verify", "good");
  t.is(good.code, 0, good.stderr);
  t.regex(good.stdout, new RegExp(`^good: passed \\(ok\\), ${digest}$`, "m"));
  t.is(good.stderr, "", "no bar drawn when stderr is no terminal");
  const bad = await llorch(sys, "verify", "bad");
  t.is(bad.code, 1);
  t.regex(bad.stdout, /^bad: failed \(digest_mismatch\)/m);
  t.regex(bad.stderr, /bad failed verification: digest mismatch/);
  const missing = await llorch(sys, "verify", "nope");
  t.is(missing.code, 1);
  t.regex(missing.stderr, /NOT_FOUND/);
});

const skipped = noBrowserReason();
if (skipped) {
  test(`SKIPPED, no browser: the console's progress bars; ${skipped}`, (t) => t.pass());
} else {
  test("the console shows a reloading pool's and its replica's progress as bars", async (t) => {
    const { sys, release } = await reloadingSystem(t);
    const chromium = await launchChromium();
    t.teardown(() => chromium.close());
    const page = await chromium.browser.newPage();
    await page.goto(`${sys.edgeUrl}/ui`);
    await page.waitForSelector("#pools tbody progress", { timeout: 15_000 });
    const bars = await page.$$eval("#pools tbody progress, #replicas tbody progress", (els) =>
      els.map((el) => [Number(el.getAttribute("value")), Number(el.getAttribute("max")), el.nextElementSibling?.textContent ?? ""]),
    );
    t.deepEqual(bars, [
      [100 * MIB, 400 * MIB, "downloading b.gguf 25% (100 MiB / 400 MiB)"],
      [100 * MIB, 400 * MIB, "downloading b.gguf 25% (100 MiB / 400 MiB)"],
    ]);
    release();
    await page.waitForFunction('document.querySelector("#pools tbody progress") === null', { timeout: 15_000 });
    t.pass("the bar went with the load");
  });
}
