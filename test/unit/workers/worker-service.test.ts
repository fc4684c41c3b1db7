import test from "ava";
import { Metadata, status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { Engine, StopReason } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type InfoResponse, type SubmitResponse, type WorkerHealth } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { MockEngine } from "../../../workers/mock/mock-engine.js";
import { basicMockAdapter } from "./mock-adapter.js";
import {
  collect,
  drain,
  eventually,
  firstMatching,
  health,
  info,
  loadModel,
  logCapture,
  props,
  startTestWorker,
  submitAll,
  submitRequest,
  tokenTexts,
} from "./helpers.js";
import { serveWorkerService } from "./worker-service-harness.js";

function errorOf(events: SubmitResponse[]) {
  const last = events.at(-1)?.event;
  return last?.$case === "error" ? last.error : undefined;
}

test("Submit streams started, contiguous token batches and end, then closes with OK", async (t) => {
  const { client } = await startTestWorker(t);
  const events = await submitAll(client, submitRequest({ prompt: "four words right here", maxTokens: 100 }));
  t.is(events[0]!.event?.$case, "started");
  t.deepEqual(events[0]!.event?.$case === "started" && events[0]!.event.started, { tokensIn: 4 });
  const texts = tokenTexts(t, events);
  t.is(texts.length, 100);
  const end = events.at(-1)!.event;
  t.is(end?.$case, "end");
  if (end?.$case === "end") t.like(end.end, { tokensOut: 100, tokensIn: 4, stopReason: StopReason.STOP_REASON_MAX_TOKENS });
});

test("the stream over gRPC is byte-identical to the engine's own output, unicode included", async (t) => {
  const { client } = await startTestWorker(t);
  const request = submitRequest({ prompt: "unicode please", seed: 7, maxTokens: 300 });
  const direct = new MockEngine();
  await direct.start();
  const expected = (await collect(direct, request)).texts.join("");
  const received = tokenTexts(t, await submitAll(client, request)).join("");
  t.is(Buffer.from(received).toString("hex"), Buffer.from(expected).toString("hex"));
});

test("Props shows a slot taken while a generation runs and free again after it ends", async (t) => {
  const { client } = await startTestWorker(t, { mock: { slots: 2, tokensPerSecond: 100 } });
  t.like(await props(client), { slotsTotal: 2, slotsFree: 2, requestsWaiting: 0 });
  const call = client.submit(submitRequest({ maxTokens: 100 }));
  const done = drain(call);
  await firstMatching(call, (m) => m.event?.$case === "tokens");
  t.like(await props(client), { slotsTotal: 2, slotsFree: 1 });
  await done;
  t.like(await props(client), { slotsFree: 2 });
});

test("cancelling the call mid-stream aborts the generation and frees its slot", async (t) => {
  const { client } = await startTestWorker(t, { mock: { slots: 1, tokensPerSecond: 50 } });
  const call = client.submit(submitRequest({ maxTokens: 10_000 }));
  const failed = drain(call).catch((err: { code: number }) => err.code);
  await firstMatching(call, (m) => m.event?.$case === "tokens");
  t.like(await props(client), { slotsFree: 0 });
  call.cancel();
  t.is(await failed, GrpcStatus.CANCELLED);
  t.true(await eventually(async () => (await props(client)).slotsFree === 1));
  // The freed slot really is usable again.
  const events = await submitAll(client, submitRequest({ taskId: "task-2", maxTokens: 3 }));
  t.is(events.at(-1)?.event?.$case, "end");
});

test("Cancel stops a running task by id: its stream ends with stop reason CANCELED", async (t) => {
  const { client } = await startTestWorker(t);
  const call = client.submit(submitRequest({ taskId: "to-cancel", prompt: "[[mock hang_after=3]] go", maxTokens: 100 }));
  const done = drain(call);
  await firstMatching(call, (m) => m.event?.$case === "tokens");
  const found = await new Promise<boolean>((resolve, reject) =>
    client.cancel({ taskId: "to-cancel" }, (err, res) => (err ? reject(err) : resolve(res.found))),
  );
  t.true(found);
  const events = await done;
  const end = events.at(-1)!.event;
  t.is(end?.$case, "end");
  if (end?.$case === "end") t.like(end.end, { tokensOut: 3, stopReason: StopReason.STOP_REASON_CANCELED });
  t.like(await props(client), { slotsFree: 4 });
});

test("Cancel of an unknown task reports found=false", async (t) => {
  const { client } = await startTestWorker(t);
  const found = await new Promise<boolean>((resolve, reject) =>
    client.cancel({ taskId: "nope" }, (err, res) => (err ? reject(err) : resolve(res.found))),
  );
  t.false(found);
});

test("WatchHealth sends the current state at once, then the change when loading finishes", async (t) => {
  // Long enough that the first message surely precedes the load even on a busy machine.
  const { client } = await startTestWorker(t, { mock: { loadMs: 1_000 } });
  const call = client.watchHealth({});
  const seen: WorkerHealth[] = [];
  call.on("data", (m: { health: WorkerHealth }) => seen.push(m.health));
  call.on("error", () => {});
  await firstMatching(call, (m) => m.health?.ready === true);
  call.cancel();
  t.like(seen[0], { live: true, ready: false });
  t.like(seen.at(-1), { live: true, ready: true, lastError: "" });
  t.is(seen.length, 2);
});

test("WatchProps sends the current props, then one message per slot change", async (t) => {
  const { client } = await startTestWorker(t, { mock: { slots: 3 } });
  const call = client.watchProps({});
  const free: number[] = [];
  call.on("data", (m: { props: { slotsFree: number } }) => free.push(m.props.slotsFree));
  call.on("error", () => {});
  await firstMatching(call, () => true);
  await submitAll(client, submitRequest({ maxTokens: 2 }));
  t.true(await eventually(() => free.length >= 3));
  call.cancel();
  t.deepEqual(free, [3, 2, 3]);
});

test("a submit while the engine loads gets a retriable ENGINE_UNAVAILABLE event", async (t) => {
  const { client } = await startTestWorker(t, { mock: { loadMs: 5_000 } });
  const error = errorOf(await submitAll(client, submitRequest()));
  t.like(error, { kind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, retriable: true });
});

for (const [what, overrides] of [
  ["max_tokens 0", { maxTokens: 0 }],
  ["an empty task_id", { taskId: "" }],
  ["ctx above ctx_max", { ctx: 100_000 }],
] as const) {
  test(`${what} is refused with an INVALID_REQUEST event and an OK status`, async (t) => {
    const { client } = await startTestWorker(t);
    const events = await submitAll(client, submitRequest(overrides));
    t.is(events.length, 1);
    t.like(errorOf(events), { kind: WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST, retriable: false });
    t.like(await props(client), { slotsFree: 4 });
  });
}

test("a replica that serves one model refuses another", async (t) => {
  const { client } = await startTestWorker(t, { modelRef: "mock:one", servesAnyModel: false });
  t.like(errorOf(await submitAll(client, submitRequest({ modelRef: "mock:two" }))), {
    kind: WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST,
  });
  t.is((await submitAll(client, submitRequest({ modelRef: "mock:one", maxTokens: 1 }))).at(-1)?.event?.$case, "end");
});

test("when every slot is busy a submit gets a retriable CAPACITY event", async (t) => {
  const { client } = await startTestWorker(t, { mock: { slots: 1 } });
  const busy = client.submit(submitRequest({ taskId: "hog", prompt: "[[mock hang_after=1]]" }));
  busy.on("error", () => {});
  await firstMatching(busy, (m) => m.event?.$case === "tokens");
  const error = errorOf(await submitAll(client, submitRequest({ taskId: "second" })));
  t.like(error, { kind: WorkerErrorKind.WORKER_ERROR_KIND_CAPACITY, retriable: true });
  busy.cancel();
});

test("an engine failure is an error event after the tokens produced so far, with an OK status", async (t) => {
  const { client } = await startTestWorker(t, { mock: { failAfter: 5, failKind: "timeout" } });
  const events = await submitAll(client, submitRequest({ maxTokens: 50 }));
  t.is(tokenTexts(t, events).length, 5);
  t.like(errorOf(events), { kind: WorkerErrorKind.WORKER_ERROR_KIND_TIMEOUT, retriable: true });
  t.like(await props(client), { slotsFree: 4 });
});

test("Info describes engine, model and this replica", async (t) => {
  const { client, worker } = await startTestWorker(t, { poolId: "p9", engine: "vllm", deviceMask: "GPU0" });
  const info = await new Promise<InfoResponse>((resolve, reject) => client.info({}, (err, res) => (err ? reject(err) : resolve(res))));
  t.like(info, {
    engine: Engine.ENGINE_VLLM,
    adapter: "mock",
    modelRef: "mock:tiny",
    deviceMask: "GPU0",
    poolId: "p9",
    servesAnyModel: true,
  });
  t.is(info.replicaId, worker.replicaId);
  t.regex(worker.replicaId, /^p9-r\d+$/);
});

test("stopping the worker ends running generations with a retriable RESET", async (t) => {
  const { client, worker } = await startTestWorker(t);
  const call = client.submit(submitRequest({ prompt: "[[mock hang_after=2]]" }));
  const done = drain(call);
  await firstMatching(call, (m) => m.event?.$case === "tokens");
  await worker.stop();
  t.like(errorOf(await done), { kind: WorkerErrorKind.WORKER_ERROR_KIND_RESET, retriable: true });
});

test("the ready line, and one start and one end line per generation with the correlation id, never a line per token", async (t) => {
  const { logger, lines } = logCapture();
  const { client, worker } = await startTestWorker(t, { metricsPort: 0 }, logger);
  const ready = lines.filter((l) => l.event === "ready");
  t.is(ready.length, 1);
  t.like(ready[0], { address: worker.address, metrics_address: worker.metricsAddress });

  const md = new Metadata();
  md.set("x-correlation-id", "corr-123");
  await drain(client.submit(submitRequest({ taskId: "logged", maxTokens: 500 }), md));
  const generation = lines.filter((l) => l.job_id === "logged");
  t.deepEqual(
    generation.map((l) => l.event),
    ["generation_start", "generation_end"],
  );
  for (const l of generation) {
    t.like(l, {
      correlation_id: "corr-123",
      session_id: "session-1",
      engine: "llamacpp",
      pool_id: "default",
      replica_id: worker.replicaId,
    });
    t.is(typeof l.msg, "string");
  }
  t.like(generation[1], { tokens_in: 4, tokens_out: 500, outcome: "completed" });
  t.is(typeof generation[1]!.decode_time_ms, "number");
});

test("GET /metrics reports tokens and generations with replica labels", async (t) => {
  const { client, worker } = await startTestWorker(t, { metricsPort: 0, poolId: "pm" });
  await submitAll(client, submitRequest({ maxTokens: 12 }));
  await submitAll(client, submitRequest({ maxTokens: 0 }));
  const text = await (await fetch(`http://${worker.metricsAddress}/metrics`)).text();
  const labels = `engine="llamacpp",engine_version="${new MockEngine().info().engineVersion}",pool_id="pm",replica_id="${worker.replicaId}"`;
  t.true(text.includes(`worker_tokens_out_total{${labels}} 12`), text);
  t.true(text.includes(`worker_tokens_in_total{${labels}} 4`));
  t.true(text.includes(`worker_generations_total{${labels},outcome="completed"} 1`));
  t.true(text.includes(`worker_generations_total{${labels},outcome="rejected"} 1`));
  t.true(text.includes(`worker_slots{${labels}} 4`));
  t.true(text.includes(`worker_slots_free{${labels}} 4`));
  t.false(text.includes("kv_cache_usage_ratio{"), "the mock has no KV cache to report");
});

function grpcErrorOf(promise: Promise<unknown>): Promise<ServiceError> {
  return promise.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (err: ServiceError) => err,
  );
}

test("LoadModel switches the model: the response and Info announce it, digest included", async (t) => {
  const { client } = await startTestWorker(t, { modelRef: "mock:old", mock: { reloadMs: 50 } });
  const before = await info(client);
  const response = await loadModel(client, "mock:new");
  const after = await info(client);
  t.deepEqual(response, { modelRef: "mock:new", modelDigest: after.modelDigest, engineVersion: before.engineVersion });
  t.is(after.modelRef, "mock:new");
  t.not(after.modelDigest, before.modelDigest);
  t.like(after, { poolId: before.poolId, replicaId: before.replicaId });
  t.like(await health(client), { live: true, ready: true, lastError: "" });
});

test("a replica that serves one model serves the loaded one afterwards, and only that one", async (t) => {
  const { client } = await startTestWorker(t, { modelRef: "mock:one", servesAnyModel: false, mock: { reloadMs: 10 } });
  await loadModel(client, "mock:two");
  t.is((await submitAll(client, submitRequest({ modelRef: "mock:two", maxTokens: 1 }))).at(-1)?.event?.$case, "end");
  t.like(errorOf(await submitAll(client, submitRequest({ modelRef: "mock:one" }))), {
    kind: WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST,
  });
});

test("a LoadModel that fails is FAILED_PRECONDITION and the previous model keeps serving", async (t) => {
  const { client } = await startTestWorker(t, { modelRef: "mock:old", mock: { reloadMs: 30, rejectModels: ["mock:bad", "mock:worse"] } });
  const before = await info(client);
  const err = await grpcErrorOf(loadModel(client, "mock:bad"));
  t.is(err.code, GrpcStatus.FAILED_PRECONDITION);
  t.regex(err.details, /^failed to load mock:bad: /);
  t.deepEqual(await info(client), before);
  const after = await health(client);
  t.like(after, { live: true, ready: true });
  t.is(after.lastError, err.details);
  t.is((await submitAll(client, submitRequest({ maxTokens: 2 }))).at(-1)?.event?.$case, "end");
});

test("LoadModel without a model_ref is INVALID_ARGUMENT and loads nothing", async (t) => {
  const { client } = await startTestWorker(t);
  const err = await grpcErrorOf(loadModel(client, ""));
  t.is(err.code, GrpcStatus.INVALID_ARGUMENT);
  t.is(err.details, "model_ref is required");
  t.is((await info(client)).modelRef, "mock:tiny");
});

test("WatchHealth shows a LoadModel as not ready while it loads, then ready again", async (t) => {
  const { client } = await startTestWorker(t, { mock: { reloadMs: 200 } });
  const call = client.watchHealth({});
  const seen: WorkerHealth[] = [];
  call.on("data", (m: { health: WorkerHealth }) => seen.push(m.health));
  call.on("error", () => {});
  await firstMatching(call, (m) => m.health?.ready === true);
  await loadModel(client, "mock:next");
  t.true(await eventually(() => seen.length >= 3));
  call.cancel();
  t.deepEqual(seen, [
    { live: true, ready: true, lastError: "" },
    { live: true, ready: false, lastError: "loading mock:next" },
    { live: true, ready: true, lastError: "" },
  ]);
});

test("during a LoadModel a submit gets a retriable ENGINE_UNAVAILABLE and a second LoadModel fails at once", async (t) => {
  // Long enough that both probes surely land while it loads, even on a busy machine.
  const { client } = await startTestWorker(t, { mock: { reloadMs: 2_000 } });
  const first = loadModel(client, "mock:a");
  t.true(await eventually(async () => !(await health(client)).ready));
  const [submitted, second] = await Promise.all([submitAll(client, submitRequest()), grpcErrorOf(loadModel(client, "mock:b"))]);
  t.like(errorOf(submitted), { kind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, retriable: true });
  t.is(second.code, GrpcStatus.FAILED_PRECONDITION);
  t.is(second.details, "a model load is already in progress");
  t.is((await first).modelRef, "mock:a");
  t.is((await info(client)).modelRef, "mock:a");
});

test("an engine that cannot switch models answers UNIMPLEMENTED", async (t) => {
  const engine = new MockEngine();
  await engine.start();
  // Everything the mock does except loadModel.
  const client = await serveWorkerService(t, basicMockAdapter(engine));
  const err = await grpcErrorOf(loadModel(client, "mock:other"));
  t.is(err.code, GrpcStatus.UNIMPLEMENTED);
  t.is(err.details, "this engine cannot switch models");
});

test("each LoadModel logs one start and one end line with a human sentence", async (t) => {
  const { logger, lines } = logCapture();
  const { client, worker } = await startTestWorker(t, { modelRef: "mock:old", mock: { reloadMs: 10, rejectModels: ["mock:bad"] } }, logger);
  const md = new Metadata();
  md.set("x-correlation-id", "corr-load");
  await new Promise<void>((resolve, reject) =>
    client.loadModel({ modelRef: "mock:new", expectedDigest: "" }, md, (err) => (err ? reject(err) : resolve())),
  );
  await grpcErrorOf(loadModel(client, "mock:bad"));
  const loads = lines.filter((l) => typeof l.event === "string" && l.event.startsWith("model_load"));
  t.deepEqual(
    loads.map((l) => [l.event, l.model_ref, l.previous_model_ref, l.outcome]),
    [
      ["model_load_start", "mock:new", "mock:old", undefined],
      ["model_load_end", "mock:new", "mock:old", "loaded"],
      ["model_load_start", "mock:bad", "mock:new", undefined],
      ["model_load_end", "mock:bad", "mock:new", "failed"],
    ],
  );
  for (const l of loads) {
    t.like(l, { pool_id: "default", replica_id: worker.replicaId });
    t.is(typeof l.msg, "string");
  }
  t.like(loads[0], { correlation_id: "corr-load" });
  t.is(typeof loads[1]!.duration_ms, "number");
  t.like(loads[3], { level: 40, error_kind: "invalid_request", serving_model_ref: "mock:new" });
});
