import test from "ava";
import { WorkerErrorKind } from "../../../contracts/gen/llama_orch/v1/worker.js";
import type { GenerationSink } from "../../../workers/engine-adapter.js";
import { ProvisionError } from "../../../workers/provision/provision-error.js";
import { isDigestMismatch } from "../../../workers/sidecar/load-refusal.js";
import { submitRequest, workerFailure } from "./helpers.js";
import { switcherWorld, until } from "./model-switcher-harness.js";

const A = "hf:o/a/a.gguf";
const B = "hf:o/b/b.gguf";

const sink = (): GenerationSink & { startedAt?: number } => {
  const s: GenerationSink & { startedAt?: number } = {
    started: () => (s.startedAt = Date.now()),
    tokens: () => {},
    embedding: () => {},
    rerank: () => {},
  };
  return s;
};

/** Starts a generation and leaves it running; `done` settles when the instance finishes it. */
function running(w: ReturnType<typeof switcherWorld>, taskId = "t1", signal = new AbortController().signal) {
  const out = sink();
  const done = w.switcher.generate(submitRequest({ taskId }), signal, out);
  done.catch(() => {});
  return { out, done };
}

test("the first start provisions with progress in the load state and a sentence in health, then serves", async (t) => {
  const w = switcherWorld();
  w.progress.set(A, [
    { phase: "resolving", bytesDone: 0, bytesTotal: undefined, bytesPerSecond: 0, file: "a.gguf" },
    { phase: "downloading", bytesDone: 180 * 2 ** 20, bytesTotal: 400 * 2 ** 20, bytesPerSecond: 12 * 2 ** 20, file: "a.gguf" },
    { phase: "done", bytesDone: 400 * 2 ** 20, bytesTotal: 400 * 2 ** 20, bytesPerSecond: 0, file: undefined },
  ]);
  t.deepEqual(w.switcher.health(), { live: false, ready: false, lastError: "not started" });
  await w.switcher.start();
  const sentences = w.heard.map((h) => h.health.lastError);
  t.deepEqual(sentences, [
    `loading ${A}`,
    `resolving ${A}`,
    `downloading ${A}: 45% (180.0 MiB of 400.0 MiB, 12.0 MiB/s)`,
    `loading ${A}`,
    "",
  ]);
  t.true(
    w.heard.slice(0, -1).every((h) => h.health.live && !h.health.ready),
    "live, not ready while it loads",
  );
  t.deepEqual(w.heard[2]!.load, {
    progress: {
      phase: "downloading",
      bytesDone: 180 * 2 ** 20,
      bytesTotal: 400 * 2 ** 20,
      bytesPerSecond: 12 * 2 ** 20,
      subject: "a.gguf",
    },
    wakesOnSubmit: false,
  });
  t.like(w.heard.at(-1), { health: { live: true, ready: true, lastError: "" }, load: undefined });
  t.deepEqual(w.log, [`prepare ${A}`, `create ${A}`, `start ${A}`, `ready ${A}`]);
  t.like(w.switcher.info(), { modelRef: A, modelDigest: `sha256:${"0".repeat(64)}` });
});

test("a failed first provisioning leaves the sidecar live, not ready, with the typed reason", async (t) => {
  const w = switcherWorld();
  w.prepareFailures.set(A, new ProvisionError("unauthorized", `${A}: the repository is gated (401 GatedRepo); set HF_TOKEN to a token`));
  const err = workerFailure(t, await t.throwsAsync(w.switcher.start()));
  t.is(err.message, `failed to load ${A}: not authorized: the repository is gated (401 GatedRepo); set HF_TOKEN to a token`);
  t.deepEqual(w.switcher.health(), { live: true, ready: false, lastError: err.message });
  t.is(w.switcher.loadState(), undefined);
  t.deepEqual(w.instances, [], "no engine started");
});

test("beside: the new instance starts while the old one serves; traffic moves once it is Ready; the old one stops after its generation", async (t) => {
  const w = switcherWorld();
  await w.switcher.start();
  const old = running(w);
  w.hold.add(B);
  const loading = w.switcher.loadModel!(B);
  await until(() => w.of(B).length === 1, "B created");
  t.deepEqual(w.switcher.health(), { live: true, ready: false, lastError: `loading ${B}` });
  t.is(w.switcher.info().modelRef, A, "A is announced until B serves");
  w.of(B)[0]!.release();
  await loading;
  t.is(w.switcher.info().modelRef, B);
  t.true(w.switcher.health().ready);
  t.false(w.of(A)[0]!.stopped, "A runs on while its generation does");
  const next = running(w, "t2");
  t.deepEqual(w.log.slice(-1), [`generate ${B}`], "new work goes to B");
  w.of(A)[0]!.generations[0]!.finish();
  await old.done;
  await until(() => w.of(A)[0]!.stopped, "A stopped");
  t.deepEqual(
    w.log.filter((l) => !l.startsWith("generate")),
    [`prepare ${A}`, `create ${A}`, `start ${A}`, `ready ${A}`, `prepare ${B}`, `create ${B}`, `start ${B}`, `ready ${B}`, `stop ${A}`],
  );
  w.of(B)[0]!.generations[0]!.finish();
  await next.done;
});

test("stop-first: the old instance ends after its generation, then the new one starts", async (t) => {
  const w = switcherWorld();
  await w.switcher.start();
  const old = running(w);
  w.plans.set(B, "stop-first");
  const loading = w.switcher.loadModel!(B);
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(w.of(B), [], "nothing started while A's generation runs");
  w.of(A)[0]!.generations[0]!.finish();
  await old.done;
  await loading;
  t.deepEqual(w.log.slice(-4), [`stop ${A}`, `create ${B}`, `start ${B}`, `ready ${B}`]);
  t.is(w.switcher.info().modelRef, B);
});

test("stop-first: a new model that does not start gives the old one back, and the error says both", async (t) => {
  const w = switcherWorld();
  await w.switcher.start();
  w.plans.set(B, "stop-first");
  w.failStarts.set(B, "engine exited with code 1; last stderr lines:\nllama_model_load: error loading model");
  const err = workerFailure(t, await t.throwsAsync(w.switcher.loadModel!(B)));
  t.is(
    err.message,
    `failed to load ${B}: engine exited with code 1; last stderr lines:\nllama_model_load: error loading model (${A} was stopped first and serves again); still serving ${A}`,
  );
  t.deepEqual(w.log.slice(4), [
    `prepare ${B}`,
    `stop ${A}`,
    `create ${B}`,
    `start ${B}`,
    `stop ${B}`,
    `create ${A}`,
    `start ${A}`,
    `ready ${A}`,
  ]);
  t.is(w.switcher.info().modelRef, A);
  t.deepEqual(w.switcher.health(), { live: true, ready: true, lastError: err.message }, "ready, with the failure until the next load");
  await w.switcher.loadModel!("hf:o/c/c.gguf");
  t.deepEqual(w.switcher.health(), { live: true, ready: true, lastError: "" });
});

test("a model that cannot fit is refused before any engine starts or stops", async (t) => {
  const w = switcherWorld();
  await w.switcher.start();
  w.plans.set(B, "refuse");
  const err = workerFailure(t, await t.throwsAsync(w.switcher.loadModel!(B)));
  t.is(err.message, `failed to load ${B}: cannot fit: it needs 9 GiB but only 1 GiB is free; still serving ${A}`);
  t.is(w.instances.length, 1);
  t.false(w.of(A)[0]!.stopped);
  t.true(w.switcher.health().ready);
});

test("a digest mismatch fails the switch with the provisioner's verdict as its cause; the old model serves on", async (t) => {
  const w = switcherWorld();
  await w.switcher.start();
  w.prepareFailures.set(
    B,
    new ProvisionError("digest_mismatch", `${B}: sha256 aa is not the expected bb; the downloaded bytes were deleted`),
  );
  const err = workerFailure(t, await t.throwsAsync(w.switcher.loadModel!(B, { expectedDigest: `sha256:${"b".repeat(64)}` })));
  t.is(
    err.message,
    `failed to load ${B}: digest mismatch: sha256 aa is not the expected bb; the downloaded bytes were deleted; still serving ${A}`,
  );
  t.true(isDigestMismatch(err));
  t.is(err.kind, WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.is(w.switcher.info().modelRef, A);
});

test("one load at a time: a LoadModel during a load fails at once", async (t) => {
  const w = switcherWorld();
  await w.switcher.start();
  w.hold.add(B);
  const first = w.switcher.loadModel!(B);
  const second = workerFailure(t, await t.throwsAsync(w.switcher.loadModel!("hf:o/c/c.gguf")));
  t.like(second, { kind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, message: "a model load is already in progress" });
  await until(() => w.of(B).length === 1, "B created");
  w.of(B)[0]!.release();
  await first;
});

test("an engine that loads its model itself cannot switch, and is started without provisioning", async (t) => {
  const w = switcherWorld({ loadsFiles: false });
  t.is(w.switcher.loadModel, undefined);
  await w.switcher.start();
  t.deepEqual(w.log, [`create ${A}`, `start ${A}`, `ready ${A}`]);
  t.like(w.switcher.info(), { modelRef: A, modelDigest: "" });
});

test("--model-ttl: an idle model is unloaded, says so, and the next generation loads it again before it starts", async (t) => {
  const w = switcherWorld({ ttlMs: 40 });
  await w.switcher.start();
  await until(() => w.of(A)[0]!.stopped, "the idle unload");
  t.deepEqual(w.switcher.health(), { live: true, ready: false, lastError: "unloaded after 40 ms idle; the next task loads it" });
  t.deepEqual(w.switcher.loadState(), { progress: undefined, wakesOnSubmit: true });
  t.like(w.switcher.info(), { modelRef: A });
  w.hold.add(A);
  const [x, y] = [running(w, "t1"), running(w, "t2")];
  await until(() => w.of(A).length === 2, "one new instance for both");
  t.like(w.switcher.loadState(), { wakesOnSubmit: true, progress: { phase: "loading" } });
  t.is(x.out.startedAt, undefined, "started waits for the load");
  w.of(A)[1]!.release();
  await until(() => w.of(A)[1]!.generations.length === 2, "both run on the new instance");
  t.is(w.of(A).length, 2);
  t.true(w.switcher.health().ready);
  t.is(w.switcher.loadState(), undefined);
  for (const g of w.of(A)[1]!.generations) g.finish();
  await Promise.all([x.done, y.done]);
  await until(() => w.of(A)[1]!.stopped, "unloaded again once idle");
});

test("--model-ttl counts from the end of the last generation, never during one", async (t) => {
  const w = switcherWorld({ ttlMs: 30 });
  await w.switcher.start();
  const g = running(w);
  await new Promise((r) => setTimeout(r, 90));
  t.false(w.of(A)[0]!.stopped, "not unloaded under a running generation");
  w.of(A)[0]!.generations[0]!.finish();
  await g.done;
  await until(() => w.of(A)[0]!.stopped, "unloaded after the ttl");
});

test("a task cancelled while its model wakes stops waiting; the load goes on for the next task", async (t) => {
  const w = switcherWorld({ ttlMs: 20 });
  await w.switcher.start();
  await until(() => w.of(A)[0]!.stopped, "the idle unload");
  w.hold.add(A);
  const ctl = new AbortController();
  const cancelled = running(w, "t1", ctl.signal);
  await until(() => w.of(A).length === 2, "the wake started");
  ctl.abort();
  const err = workerFailure(t, await t.throwsAsync(cancelled.done));
  t.like(err, { kind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, message: "cancelled while the model was loading" });
  w.of(A)[1]!.release();
  await until(() => w.switcher.health().ready, "ready after the wake");
});

test("a wake that fails leaves the model unloaded with the reason; the next task tries again", async (t) => {
  const w = switcherWorld({ ttlMs: 20 });
  await w.switcher.start();
  await until(() => w.of(A)[0]!.stopped, "the idle unload");
  w.failStarts.set(A, "engine not Ready within 600000 ms");
  const err = workerFailure(t, await t.throwsAsync(running(w).done));
  t.like(err, { kind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, retriable: true });
  t.regex(err.message, /^failed to load hf:o\/a\/a\.gguf: engine not Ready within 600000 ms$/);
  t.deepEqual(w.switcher.health(), {
    live: true,
    ready: false,
    lastError: `unloaded after 20 ms idle; the next task loads it; loading ${A} failed: engine not Ready within 600000 ms`,
  });
  t.true(w.switcher.loadState()?.wakesOnSubmit);
  w.failStarts.delete(A);
  const again = running(w, "t2");
  await until(() => w.switcher.health().ready, "ready after the second wake");
  w.of(A).at(-1)!.generations[0]!.finish();
  await again.done;
});

test("stop() ends the serving, the starting and the retiring instances", async (t) => {
  const w = switcherWorld();
  await w.switcher.start();
  running(w);
  w.hold.add(B);
  const loading = w.switcher.loadModel!(B);
  await until(() => w.of(B).length === 1, "B created");
  await w.switcher.stop();
  await t.throwsAsync(loading);
  t.true(w.instances.every((i) => i.stopped));
  t.deepEqual(w.switcher.health(), { live: false, ready: false, lastError: "stopped" });
});

test("an engine that reports its file's load shows it in the load state and health, once per percent, until it serves", async (t) => {
  const w = switcherWorld();
  w.hold.add(A);
  const started = w.switcher.start();
  await until(() => w.of(A).length === 1, "the instance");
  const instance = w.of(A)[0]!;
  const MIB = 2 ** 20;
  instance.onLoadProgress!(100 * MIB, 400 * MIB);
  t.deepEqual(w.switcher.loadState()?.progress, {
    phase: "loading",
    bytesDone: 100 * MIB,
    bytesTotal: 400 * MIB,
    bytesPerSecond: undefined,
    subject: A,
  });
  t.is(w.switcher.health().lastError, `loading ${A}: 25% (100.0 MiB of 400.0 MiB)`);
  const heard = w.heard.length;
  instance.onLoadProgress!(100 * MIB + 1, 400 * MIB);
  t.is(w.heard.length, heard, "the same percent again is not news");
  instance.release();
  await started;
  t.is(w.switcher.loadState(), undefined);
  instance.onLoadProgress!(400 * MIB, 400 * MIB);
  t.is(w.switcher.loadState(), undefined, "a report after the load is over is ignored");
});
