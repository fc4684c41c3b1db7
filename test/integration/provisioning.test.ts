import test, { type ExecutionContext } from "ava";
import { createHash } from "node:crypto";
import type { LoadProgress } from "../../contracts/gen/llama_orch/v1/common.js";
import { FakeSidecar, untrustedRefusal, type FakeSidecarOptions } from "../fakes/fake-sidecar.js";
import { api, stream, taskBody } from "../support/http.js";
import type { Json } from "../support/json.js";
import { TestSystem } from "../support/system.js";

// Core's side of provisioning through edge and core, against sidecars the
// tests drive by hand (test/fakes/fake-sidecar.ts): what a sidecar reports
// while it loads, what core asks it to match, and a model it unloaded.

const sha = (text: string) => createHash("sha256").update(text).digest("hex");
const MB = 1_000_000;

async function systemWith(
  t: ExecutionContext,
  sidecars: Omit<FakeSidecarOptions, "core">[],
  coreFlags: Record<string, string> = {},
): Promise<{ sys: TestSystem; fakes: FakeSidecar[] }> {
  const sys = await TestSystem.start({ workers: [], coreFlags });
  t.teardown(() => sys.stop());
  const fakes = await Promise.all(sidecars.map((o) => FakeSidecar.start({ ...o, core: sys.coreAddress })));
  t.teardown(() => Promise.all(fakes.map((f) => f.close())));
  await sys.waitForReadyReplicas(fakes.length);
  return { sys, fakes };
}

async function until(t: ExecutionContext, sys: TestSystem, pool: string, done: (h: Json) => boolean, what: string): Promise<Json> {
  let last: Json;
  for (let i = 0; i < 200; i++) {
    last = (await api(t, sys.edgeUrl, "GET", `/v1/pools/${pool}/health`)).json;
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`pool ${pool} never ${what}: ${JSON.stringify(last)}`);
}

function downloading(bytesDone: number, bytesTotal: number, subject: string): LoadProgress {
  return { phase: "downloading", bytesDone, bytesTotal, bytesPerSecond: 5 * MB, subject };
}

/** A load the test finishes by calling the returned function. */
function heldLoad(fake: FakeSidecar): () => void {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  fake.onLoadModel = () => held;
  return release;
}

test("while a pool reloads, health shows each replica's progress and the slowest one's as reload_progress; both go when it is done", async (t) => {
  const { sys, fakes } = await systemWith(t, [
    { pool: "p", replica: "r1", modelRef: "hf:org/a/a.gguf" },
    { pool: "p", replica: "r2", modelRef: "hf:org/a/a.gguf" },
  ]);
  const [r1, r2] = fakes as [FakeSidecar, FakeSidecar];
  const done = [heldLoad(r1), heldLoad(r2)];
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/pools/p/reload", { body: { new_model_ref: "hf:org/b/b.gguf" } })).status, 202);
  r1.report(
    { ready: false, lastError: "downloading hf:org/b/b.gguf: 75%" },
    { progress: downloading(300 * MB, 400 * MB, "b.gguf"), wakesOnSubmit: false },
  );
  r2.report(
    { ready: false, lastError: "downloading hf:org/b/b.gguf: 25%" },
    { progress: downloading(100 * MB, 400 * MB, "b.gguf"), wakesOnSubmit: false },
  );
  const during = await until(t, sys, "p", (h) => h.metrics.reload_progress?.bytes_done === 100 * MB, "showed r2 as the slowest");
  t.like(during, { ready: false, metrics: { reload_state: "reloading" } });
  t.deepEqual(during.metrics.reload_progress, {
    phase: "downloading",
    bytes_done: 100 * MB,
    bytes_total: 400 * MB,
    bytes_per_second: 5 * MB,
    subject: "b.gguf",
  });
  t.deepEqual(
    during.metrics.replicas.map((r: Json) => [r.replica_id, r.state, r.progress?.bytes_done]),
    [
      ["r1", "loading", 300 * MB],
      ["r2", "loading", 100 * MB],
    ],
  );

  r2.report(
    { ready: false, lastError: "verifying" },
    { progress: { phase: "verifying", bytesDone: 10 * MB, bytesTotal: 400 * MB, subject: "b.gguf" }, wakesOnSubmit: false },
  );
  await until(t, sys, "p", (h) => h.metrics.reload_progress?.bytes_done === 300 * MB, "showed r1 as the slowest once r2 verified");

  for (const release of done) release();
  const after = await until(t, sys, "p", (h) => h.ready && h.metrics.reload_state === "idle", "was Ready on the new model");
  t.is(after.metrics.reload_progress, undefined);
  t.deepEqual(
    after.metrics.replicas.map((r: Json) => [r.model_ref, r.state, r.progress]),
    [
      ["hf:org/b/b.gguf", "ready", undefined],
      ["hf:org/b/b.gguf", "ready", undefined],
    ],
  );
});

test("a reload asks for the catalog's full digest; a mismatch rolls back, fails the entry's verification and its tasks get UNTRUSTED_ARTIFACT", async (t) => {
  const { sys, fakes } = await systemWith(t, [{ pool: "q", replica: "q1", modelRef: "hf:org/old/o.gguf" }]);
  const [q1] = fakes as [FakeSidecar];
  const digest = `sha256:${sha("the weights the catalog vouches for")}`;
  const computed = sha("the weights the hub served");
  const register = (body: Json) => api(t, sys.edgeUrl, "POST", "/v1/catalog/models", { body });
  t.is((await register({ id: "qwen", digest, source_url: "hf:org/qwen/q.gguf" })).status, 201);
  t.is((await register({ id: "demo", digest: "sha256:deadbeef", source_url: "hf:org/demo/d.gguf" })).status, 201);
  q1.onLoadModel = (request) =>
    request.modelRef === "hf:org/qwen/q.gguf"
      ? Promise.reject(
          untrustedRefusal(
            `failed to load ${request.modelRef}: digest mismatch: sha256 ${computed} is not the expected ${digest.slice(7)}`,
          ),
        )
      : Promise.resolve();

  t.is((await api(t, sys.edgeUrl, "POST", "/v1/pools/q/reload", { body: { new_model_ref: "hf:org/qwen/q.gguf" } })).status, 202);
  const rolledBack = await until(t, sys, "q", (h) => h.metrics.reload_state === "idle" && h.metrics.last_reload_error, "rolled back");
  t.true(rolledBack.ready);
  t.is(rolledBack.metrics.model_ref, "hf:org/old/o.gguf");
  t.regex(rolledBack.metrics.last_reload_error, /q1: failed to load hf:org\/qwen\/q\.gguf: digest mismatch/);
  t.regex(rolledBack.metrics.last_reload_error, /catalog model qwen marked failed verification/);
  t.deepEqual(
    q1.loads.map((l) => [l.modelRef, l.expectedDigest]),
    [["hf:org/qwen/q.gguf", digest]],
    "the load was asked for the catalog's digest; the previous model was never unloaded, so nothing was rolled back on q1",
  );
  const entry = await api(t, sys.edgeUrl, "GET", "/v1/catalog/models/qwen");
  t.like(entry.json.verification, { status: "failed", reason: "digest_mismatch", computed_digest: `sha256:${computed}` });
  const refused = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "hf:org/qwen/q.gguf" }) });
  t.is(refused.json.code, "UNTRUSTED_ARTIFACT");
  t.is(
    (await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "qwen" }) })).json.code,
    "UNTRUSTED_ARTIFACT",
    "by id too",
  );

  t.is((await api(t, sys.edgeUrl, "POST", "/v1/pools/q/reload", { body: { new_model_ref: "hf:org/demo/d.gguf" } })).status, 202);
  await until(t, sys, "q", (h) => h.ready && h.metrics.model_ref === "hf:org/demo/d.gguf", "loaded the demo model");
  t.deepEqual(q1.loads.at(-1), { modelRef: "hf:org/demo/d.gguf", expectedDigest: "" }, "a truncated demo digest asks for nothing");
  t.is(
    (await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "hf:org/demo/d.gguf", max_tokens: 1 }) })).status,
    202,
  );
});

test("a replica that unloaded its model shows as unloaded and takes the next task, whose placement frame says it waits for the load", async (t) => {
  const { sys, fakes } = await systemWith(t, [{ pool: "w", replica: "w1", modelRef: "hf:org/m/m.gguf" }]);
  const [w1] = fakes as [FakeSidecar];
  w1.report({ ready: false, lastError: "unloaded after 10 s idle; the next task loads it" }, { progress: undefined, wakesOnSubmit: true });
  const idle = await until(t, sys, "w", (h) => h.metrics.replicas[0].state === "unloaded", "showed the replica as unloaded");
  t.false(idle.ready, "a pool whose model is unloaded is not Ready; it still takes tasks");
  w1.onSubmit = async (call) => {
    w1.report(
      { ready: false, lastError: "loading hf:org/m/m.gguf" },
      { progress: { phase: "loading", bytesDone: 0, subject: "hf:org/m/m.gguf" }, wakesOnSubmit: false },
    );
    await new Promise((r) => setTimeout(r, 300));
    w1.serve("hf:org/m/m.gguf");
    FakeSidecar.generate(call, ["awake"]);
  };
  const body = taskBody({ model_ref: "hf:org/m/m.gguf", max_tokens: 1 });
  const admitted = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
  t.is(admitted.status, 202, admitted.text + "\n" + sys.core.lines.slice(-5).join("\n"));
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
  await s.done;
  const placed = s.events.find((e) => e.event === "metrics" && e.data.replica_id === "w1");
  t.like(placed?.data, { replica_id: "w1", waits_for_model_load: true });
  t.is(s.events.at(-1)!.event, "end");
  t.true(s.events.some((e) => e.event === "token"));
  t.is(w1.submits.length, 1);
  const awake = await until(t, sys, "w", (h) => h.ready, "was Ready again");
  t.is(awake.metrics.replicas[0].state, "ready");
});

test("with auto-fetch, a task for a model being fetched hears how far it got; after the fetch failed, why, instead of a new fetch", async (t) => {
  const { sys, fakes } = await systemWith(t, [{ pool: "f", replica: "f1", modelRef: "hf:org/old/o.gguf" }], { "auto-fetch": "" });
  const [f1] = fakes as [FakeSidecar];
  const digest = `sha256:${sha("gated weights")}`;
  t.is(
    (await api(t, sys.edgeUrl, "POST", "/v1/catalog/models", { body: { id: "gated", digest, source_url: "hf:org/gated/g.gguf" } })).status,
    201,
  );
  let fail!: (err: Error) => void;
  f1.onLoadModel = () => new Promise<void>((_, reject) => (fail = reject));
  const task = () => api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "hf:org/gated/g.gguf" }) });

  const first = await task();
  t.like(first.json, { code: "POOL_UNREADY", retriable: true });
  t.regex(first.json.message, /fetching model hf:org\/gated\/g\.gguf into pool f; retry once it is ready/);
  await until(t, sys, "f", (h) => h.metrics.reload_state === "reloading", "started reloading");
  t.deepEqual(f1.loads, [{ modelRef: "hf:org/gated/g.gguf", expectedDigest: digest }], "auto-fetch asks for the catalog's digest too");
  f1.report({ ready: false, lastError: "downloading" }, { progress: downloading(100 * MB, 400 * MB, "g.gguf"), wakesOnSubmit: false });
  await until(t, sys, "f", (h) => h.metrics.reload_progress !== undefined, "showed the download");
  const during = await task();
  t.like(during.json, { code: "POOL_UNREADY", retriable: true });
  t.regex(
    during.json.message,
    /into pool f \(downloading, 25% of 0\.4 GB\)/,
    "a retry while it loads is told how far it got, not that every pool is busy",
  );

  fail(new Error("failed to load hf:org/gated/g.gguf: not authorized: the repository is gated; set HF_TOKEN"));
  await until(t, sys, "f", (h) => h.ready && h.metrics.last_reload_error, "rolled back");
  const after = await task();
  t.like(after.json, { code: "POOL_UNAVAILABLE", retriable: true });
  t.regex(after.json.message, /fetching model hf:org\/gated\/g\.gguf failed \d+ s ago: .*set HF_TOKEN/);
  t.true(Number(after.headers.get("retry-after")) <= 30, "tried again on a task after the pause");
  t.is(f1.loads.length, 1, "the failing fetch was not started again");
});
