import test from "ava";
import { StopReason } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type WorkerHealth } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure } from "../../../workers/engine-adapter.js";
import { parseMockDirectives } from "../../../workers/mock/mock-directive.js";
import { MOCK_DEFAULTS, MockEngine, type MockEngineOptions } from "../../../workers/mock/mock-engine.js";
import { collect, submitRequest } from "./helpers.js";

async function readyMock(options: Partial<MockEngineOptions> = {}): Promise<MockEngine> {
  const engine = new MockEngine(options);
  await engine.start();
  return engine;
}

test("the same prompt and seed give a byte-identical token stream", async (t) => {
  const engine = await readyMock();
  const a = await collect(engine, submitRequest({ prompt: "once upon a time", seed: 42, maxTokens: 200 }));
  const b = await collect(engine, submitRequest({ prompt: "once upon a time", seed: 42, maxTokens: 200 }));
  t.is(Buffer.from(a.texts.join("")).toString("hex"), Buffer.from(b.texts.join("")).toString("hex"));
  t.is(a.texts.length, 200);
});

test("a different seed or prompt gives a different stream", async (t) => {
  const engine = await readyMock();
  const base = await collect(engine, submitRequest({ prompt: "once upon a time", seed: 1, maxTokens: 32 }));
  const otherSeed = await collect(engine, submitRequest({ prompt: "once upon a time", seed: 2, maxTokens: 32 }));
  const otherPrompt = await collect(engine, submitRequest({ prompt: "once upon a rhyme", seed: 1, maxTokens: 32 }));
  t.notDeepEqual(base.texts, otherSeed.texts);
  t.notDeepEqual(base.texts, otherPrompt.texts);
});

test("no seed behaves as seed 0", async (t) => {
  const engine = await readyMock();
  const unseeded = await collect(engine, submitRequest({ maxTokens: 20 }));
  const zero = await collect(engine, submitRequest({ maxTokens: 20, seed: 0 }));
  t.deepEqual(unseeded.texts, zero.texts);
});

test("the first token has no leading space and every later one has one", async (t) => {
  const engine = await readyMock();
  const { texts } = await collect(engine, submitRequest({ maxTokens: 50 }));
  t.false(texts[0]!.startsWith(" "));
  t.true(texts.slice(1).every((s) => s.startsWith(" ") && s.length > 1));
});

test("long streams exercise non-ASCII words", async (t) => {
  const engine = await readyMock();
  const { texts } = await collect(engine, submitRequest({ maxTokens: 500 }));
  // eslint-disable-next-line no-control-regex -- "not ASCII" is the range from NUL up
  t.true(texts.some((s) => /[^\x00-\x7f]/.test(s)));
});

test("generation stops at max_tokens with stop reason MAX_TOKENS and counts prompt words", async (t) => {
  const engine = await readyMock();
  const out = await collect(engine, submitRequest({ prompt: "  four words  in here ", maxTokens: 7 }));
  t.is(out.texts.length, 7);
  t.is(out.started, 4);
  t.is(out.result?.stopReason, StopReason.STOP_REASON_MAX_TOKENS);
});

test("an empty prompt counts as one token in", async (t) => {
  const engine = await readyMock();
  t.is((await collect(engine, submitRequest({ prompt: "", maxTokens: 1 }))).started, 1);
});

test("at full speed tokens come in batches of up to 64 per tick", async (t) => {
  const engine = await readyMock();
  const { batches } = await collect(engine, submitRequest({ maxTokens: 150 }));
  t.deepEqual(
    batches.map((b) => b.length),
    [64, 64, 22],
  );
});

test("a token rate paces the stream", async (t) => {
  const engine = await readyMock({ tokensPerSecond: 200 });
  const t0 = performance.now();
  const { texts } = await collect(engine, submitRequest({ maxTokens: 21 }));
  const elapsed = performance.now() - t0;
  t.is(texts.length, 21);
  // 20 intervals at 5 ms each: about 100 ms; generous bounds for a busy CI machine.
  t.true(elapsed >= 90, `took ${elapsed} ms`);
  t.true(elapsed < 1_000, `took ${elapsed} ms`);
});

test("the directive parser reads every key and strips the directive from the prompt", (t) => {
  const parsed = parseMockDirectives(
    "hello [[mock fail_after=3 fail_kind=timeout hang_after=5 slow_start_ms=200 tokens_per_second=2.5]] world",
  );
  t.is(parsed.prompt, "hello world");
  t.deepEqual(parsed.overrides, {
    failAfter: 3,
    failKind: WorkerErrorKind.WORKER_ERROR_KIND_TIMEOUT,
    hangAfter: 5,
    slowStartMs: 200,
    tokensPerSecond: 2.5,
  });
  t.deepEqual(parseMockDirectives("plain prompt"), { prompt: "plain prompt", overrides: {} });
  t.deepEqual(parseMockDirectives("[[mock]] bare").overrides, {});
});

for (const bad of [
  "[[mock fail_after=x]]",
  "[[mock fail_after=-1]]",
  "[[mock fail_kind=oops]]",
  "[[mock speed=3]]",
  "[[mock slow_start_ms]]",
]) {
  test(`a malformed directive is an INVALID_REQUEST: ${bad}`, (t) => {
    const err = t.throws(() => parseMockDirectives(bad), { instanceOf: WorkerFailure });
    t.is(err.kind, WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST);
  });
}

test("a directive does not change the tokens the prompt produces", async (t) => {
  const engine = await readyMock();
  const clean = await collect(engine, submitRequest({ prompt: "tell me a story", maxTokens: 10 }));
  const directed = await collect(engine, submitRequest({ prompt: "[[mock slow_start_ms=1]] tell me a story", maxTokens: 10 }));
  t.deepEqual(directed.texts, clean.texts);
});

test("fail_after from the prompt fails after exactly N tokens with the chosen kind", async (t) => {
  const engine = await readyMock();
  const clean = await collect(engine, submitRequest({ prompt: "story", maxTokens: 10 }));
  const out = await collect(engine, submitRequest({ prompt: "story [[mock fail_after=3 fail_kind=reset]]", maxTokens: 10 }));
  t.deepEqual(out.texts, clean.texts.slice(0, 3));
  t.true(out.error instanceof WorkerFailure);
  const failure = out.error as WorkerFailure;
  t.is(failure.kind, WorkerErrorKind.WORKER_ERROR_KIND_RESET);
  t.true(failure.retriable);
});

test("configured faults apply to every task, with engine_error by default", async (t) => {
  const engine = await readyMock({ failAfter: 2 });
  const out = await collect(engine, submitRequest({ maxTokens: 10 }));
  t.is(out.texts.length, 2);
  t.is((out.error as WorkerFailure).kind, WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR);
  t.false((out.error as WorkerFailure).retriable);
});

test("fail_after 0 fails after started and before any token", async (t) => {
  const engine = await readyMock();
  const out = await collect(engine, submitRequest({ prompt: "[[mock fail_after=0]]" }));
  t.is(out.started, 1);
  t.deepEqual(out.texts, []);
  t.true(out.error instanceof WorkerFailure);
});

test("a directive overrides the configured fault", async (t) => {
  const engine = await readyMock({ failAfter: 1 });
  const out = await collect(engine, submitRequest({ prompt: "[[mock fail_after=4]] go", maxTokens: 10 }));
  t.is(out.texts.length, 4);
});

test("hang_after stops producing until the signal aborts, then settles promptly", async (t) => {
  const engine = await readyMock();
  const controller = new AbortController();
  const pending = collect(engine, submitRequest({ prompt: "[[mock hang_after=5]] wait", maxTokens: 100 }), controller.signal);
  let settled = false;
  void pending.then(() => (settled = true));
  await new Promise((r) => setTimeout(r, 100));
  t.false(settled, "still hanging after 100 ms");
  const abortedAt = performance.now();
  controller.abort();
  const out = await pending;
  t.true(performance.now() - abortedAt < 50);
  t.is(out.texts.length, 5);
  t.is(out.result?.stopReason, StopReason.STOP_REASON_CANCELED);
});

test("an abort stops a slow generation mid-stream", async (t) => {
  const engine = await readyMock({ tokensPerSecond: 100 });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 60);
  const out = await collect(engine, submitRequest({ maxTokens: 1_000 }), controller.signal);
  t.true(out.texts.length > 0 && out.texts.length < 50, `${out.texts.length} tokens`);
  t.is(out.result?.stopReason, StopReason.STOP_REASON_CANCELED);
});

test("slow_start_ms delays the first token but not started", async (t) => {
  const engine = await readyMock();
  const t0 = performance.now();
  let startedAt = 0;
  let firstTokenAt = 0;
  await engine.generate(submitRequest({ prompt: "[[mock slow_start_ms=120]]", maxTokens: 1 }), new AbortController().signal, {
    started: () => (startedAt = performance.now() - t0),
    tokens: () => (firstTokenAt ||= performance.now() - t0),
    embedding: () => undefined,
    rerank: () => undefined,
  });
  t.true(startedAt < 50, `started after ${startedAt} ms`);
  t.true(firstTokenAt >= 110, `first token after ${firstTokenAt} ms`);
});

test("while loading the mock is live but not ready, and refuses work", async (t) => {
  const engine = new MockEngine({ loadMs: 80 });
  const changes: boolean[] = [];
  engine.onHealthChange((h) => changes.push(h.ready));
  const loaded = engine.start();
  t.like(engine.health(), { live: true, ready: false });
  const out = await collect(engine, submitRequest());
  t.is((out.error as WorkerFailure).kind, WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  await loaded;
  t.like(engine.health(), { live: true, ready: true, lastError: "" });
  t.deepEqual(changes, [false, true]);
});

test("info describes the engine it stands in for, with a stable digest", (t) => {
  const a = new MockEngine({ modelRef: "mock:big" }).info();
  const b = new MockEngine({ modelRef: "mock:big" }).info();
  t.is(a.adapter, "mock");
  t.regex(a.engineVersion, /^mock-/);
  t.regex(a.modelDigest, /^sha256:[0-9a-f]{64}$/);
  t.is(a.modelDigest, b.modelDigest);
  t.not(a.modelDigest, new MockEngine({ modelRef: "mock:small" }).info().modelDigest);
  t.true(a.servesAnyModel);
  t.is(a.ctxMax, 8192);
});

function failureOf(err: unknown): WorkerFailure {
  if (!(err instanceof WorkerFailure)) throw new Error(`expected a WorkerFailure, got ${String(err)}`);
  return err;
}

test("loadModel switches models after reloadMs and info announces the new model and digest", async (t) => {
  const engine = await readyMock({ modelRef: "mock:old", reloadMs: 80 });
  const before = engine.info();
  const t0 = performance.now();
  await engine.loadModel("mock:new");
  const elapsed = performance.now() - t0;
  t.true(elapsed >= 70, `loaded after ${elapsed} ms`);
  const after = engine.info();
  t.is(after.modelRef, "mock:new");
  t.is(after.modelDigest, new MockEngine({ modelRef: "mock:new" }).info().modelDigest);
  t.not(after.modelDigest, before.modelDigest);
  t.is(after.engineVersion, before.engineVersion);
  t.is(before.modelRef, "mock:old", "an info object handed out earlier does not change under its holder");
  t.like(engine.health(), { live: true, ready: true, lastError: "" });
});

test("reloadMs defaults to 200", (t) => {
  t.is(MOCK_DEFAULTS.reloadMs, 200);
  t.deepEqual(MOCK_DEFAULTS.rejectModels, []);
});

test("while loadModel runs health is live but not ready, listeners hear it, and new work is refused", async (t) => {
  const engine = await readyMock({ reloadMs: 60 });
  const changes: WorkerHealth[] = [];
  engine.onHealthChange((h) => changes.push(h));
  const loaded = engine.loadModel("mock:next");
  t.deepEqual(engine.health(), { live: true, ready: false, lastError: "loading mock:next" });
  const refused = await collect(engine, submitRequest());
  t.is(failureOf(refused.error).kind, WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  t.true(failureOf(refused.error).retriable);
  await loaded;
  t.deepEqual(changes, [
    { live: true, ready: false, lastError: "loading mock:next" },
    { live: true, ready: true, lastError: "" },
  ]);
  t.is((await collect(engine, submitRequest({ maxTokens: 3 }))).texts.length, 3);
});

test("a generation running when a load starts is allowed to finish", async (t) => {
  // 20 tokens at 50/s take about 400 ms; the load takes 20.
  const engine = await readyMock({ reloadMs: 20, tokensPerSecond: 50 });
  let done = false;
  const running = collect(engine, submitRequest({ maxTokens: 20 })).finally(() => (done = true));
  await new Promise((r) => setTimeout(r, 10));
  await engine.loadModel("mock:next");
  t.false(done, "the generation outlived the load");
  const out = await running;
  t.is(out.error, undefined);
  t.is(out.texts.length, 20);
  t.is(out.result?.stopReason, StopReason.STOP_REASON_MAX_TOKENS);
});

test("a model in rejectModels fails to load: the old model keeps serving, ready, with lastError until a good load", async (t) => {
  const engine = await readyMock({ modelRef: "mock:old", reloadMs: 30, rejectModels: ["mock:bad"] });
  const before = engine.info();
  const changes: boolean[] = [];
  engine.onHealthChange((h) => changes.push(h.ready));
  const err = failureOf(await engine.loadModel("mock:bad").catch((e: unknown) => e));
  t.is(err.kind, WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.regex(err.message, /^failed to load mock:bad: /);
  t.deepEqual(changes, [false, true], "not ready while it tried, ready again afterwards");
  t.is(engine.info(), before);
  t.like(engine.health(), { live: true, ready: true });
  t.is(engine.health().lastError, err.message);
  // The old model serves.
  t.is((await collect(engine, submitRequest({ maxTokens: 2 }))).texts.length, 2);
  await engine.loadModel("mock:good");
  t.like(engine.health(), { ready: true, lastError: "" });
  t.is(engine.info().modelRef, "mock:good");
});

test("a second loadModel while one is in progress fails fast with ENGINE_UNAVAILABLE", async (t) => {
  const engine = await readyMock({ reloadMs: 100 });
  const first = engine.loadModel("mock:a");
  const t0 = performance.now();
  const err = failureOf(await engine.loadModel("mock:b").catch((e: unknown) => e));
  t.true(performance.now() - t0 < 50);
  t.is(err.kind, WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  t.is(err.message, "a model load is already in progress");
  await first;
  t.is(engine.info().modelRef, "mock:a");
  t.like(engine.health(), { ready: true, lastError: "" });
});

test("loadModel is refused during the initial load and before start; stop cuts a load short", async (t) => {
  const notStarted = new MockEngine();
  t.is(failureOf(await notStarted.loadModel("mock:x").catch((e: unknown) => e)).kind, WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);

  const starting = new MockEngine({ loadMs: 60 });
  const started = starting.start();
  t.is(failureOf(await starting.loadModel("mock:x").catch((e: unknown) => e)).message, "a model load is already in progress");
  await started;

  const engine = await readyMock({ reloadMs: 5_000 });
  const loading = engine.loadModel("mock:slow").catch((e: unknown) => e);
  await engine.stop();
  const err = failureOf(await loading);
  t.is(err.kind, WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  t.is(engine.info().modelRef, "mock:tiny");
  t.like(engine.health(), { live: false, ready: false, lastError: "stopped" });
});
