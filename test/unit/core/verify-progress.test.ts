import test from "ava";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { LoadProgress } from "../../../contracts/gen/llama_orch/v1/common.js";
import { CatalogModel, VerificationStatus } from "../../../contracts/gen/llama_orch/v1/catalog.js";
import { createLogger } from "../../../contracts/runtime/logger.js";
import { publicJson } from "../../../contracts/public-json.js";
import { CatalogStore as Store } from "../../../core/catalog/catalog-store.js";
import { ModelRoots } from "../../../core/catalog/model-roots.js";
import { VerifyProgress } from "../../../core/catalog/verify-progress.js";
import { createCoreMetrics } from "../../../core/metrics.js";
import type { Scheduler } from "../../../core/scheduler/scheduler.js";
import { catalogService } from "../../../core/services/catalog-service.js";
import { verifyEntry, type CatalogEntry } from "../../support/catalog-json.js";
import { sha, tempDir } from "./catalog-harness.js";

const MIB = 1024 * 1024;

test("verify reports the hashing's progress: 0 at the start, then bytes read of the file's size, under its name", async (t) => {
  const dir = await tempDir(t);
  const data = Buffer.alloc(3 * MIB, 7);
  await writeFile(path.join(dir, "w.gguf"), data);
  const reports: LoadProgress[] = [];
  const entry: CatalogEntry = { id: "m", digest: `sha256:${sha(data)}`, source_url: "w.gguf", state: "Active", created_ms: 0 };
  const v = await verifyEntry(entry, { baseDir: dir, modelDir: dir, onProgress: (p) => reports.push(p) });
  t.is(v.status, "passed");
  t.true(reports.length > 2, `one report per chunk read, got ${reports.length}`);
  t.like(reports[0], { phase: "verifying", bytesDone: 0, bytesTotal: 3 * MIB, subject: "w.gguf" });
  t.like(reports.at(-1), { phase: "verifying", bytesDone: 3 * MIB, bytesTotal: 3 * MIB });
  t.true(
    reports.every((p, i) => i === 0 || p.bytesDone > reports[i - 1]!.bytesDone),
    "bytes only grow",
  );
});

test("a running verification's progress shows on its entry in the public JSON, and is gone when the run ends", (t) => {
  const progress = new VerifyProgress();
  const pending = CatalogModel.fromPartial({
    id: "m",
    digest: `sha256:${"0".repeat(64)}`,
    verification: { status: VerificationStatus.VERIFICATION_STATUS_PENDING, checkedMs: 1 },
  });
  const json = publicJson<CatalogModel>("llama_orch.v1.CatalogModel");
  progress.report("m", { phase: "verifying", bytesDone: MIB, bytesTotal: 4 * MIB, bytesPerSecond: 2 * MIB, subject: "w.gguf" });
  t.like(json.encode(progress.overlay(pending)), {
    verification: {
      status: "pending",
      progress: { phase: "verifying", bytes_done: MIB, bytes_total: 4 * MIB, bytes_per_second: 2 * MIB, subject: "w.gguf" },
    },
  });
  t.is(progress.overlay({ ...pending, id: "other" }).verification?.progress, undefined, "another model's entry is left alone");
  progress.ended("m");
  t.is(progress.overlay(pending).verification?.progress, undefined);
});

type Handler = (call: { request: unknown }, cb: (err: Error | null, res?: unknown) => void) => void;

/** Calls a unary handler and resolves with its answer. */
function unary<Res>(handler: Handler, request: unknown): Promise<Res> {
  return new Promise((resolve, reject) => handler({ request }, (err, res) => (err ? reject(err) : resolve(res as Res))));
}

test("CatalogService.VerifyModel feeds the run's progress to the entry and ends it with the run", async (t) => {
  const dir = await tempDir(t);
  const data = Buffer.alloc(2 * MIB, 1);
  await writeFile(path.join(dir, "w.gguf"), data);
  const store = await Store.open(path.join(dir, "catalog"));
  const seen: LoadProgress[] = [];
  let ended = 0;
  const progress = new (class extends VerifyProgress {
    override report(id: string, p: LoadProgress): void {
      seen.push(p);
      super.report(id, p);
    }
    override ended(id: string): void {
      ended++;
      super.ended(id);
    }
  })();
  const lines: string[] = [];
  const service = catalogService({
    store,
    progress,
    scheduler: {} as Scheduler,
    metrics: createCoreMetrics(),
    logger: createLogger("core", {}, { write: (s: string) => void lines.push(s) }),
    baseDir: dir,
    roots: await ModelRoots.of([dir]),
  }) as unknown as Record<"createModel" | "verifyModel" | "getModel", Handler>;
  const model = CatalogModel.fromPartial({ id: "m", digest: `sha256:${sha(data)}`, sourceUrl: "w.gguf" });
  await unary(service.createModel, { model });
  await unary(service.verifyModel, { id: "m" });
  for (let i = 0; i < 200 && ended === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.is(ended, 1);
  t.like(seen.at(-1), { phase: "verifying", bytesDone: 2 * MIB, bytesTotal: 2 * MIB });
  const after = await unary<{ model: CatalogModel }>(service.getModel, { id: "m" });
  t.is(after.model.verification?.status, VerificationStatus.VERIFICATION_STATUS_PASSED);
  t.is(after.model.verification?.progress, undefined);
});
