import test from "ava";
import { api, stream, taskBody } from "../support/http.js";
import { TestSystem } from "../support/system.js";
import { startFakeLlamaCpp } from "../fakes/llamacpp-fake.js";
import { startOtlpReceiver, type ReceivedSpan } from "../fakes/otlp-receiver.js";

const TASK_ID = "llama_orch.task_id";

test("one task is one trace at the collector: edge request, core admission, queue wait, dispatch, sidecar generation and the engine call", async (t) => {
  const receiver = await startOtlpReceiver();
  t.teardown(() => receiver.close());
  // Every process this test starts inherits these: tracing on, batches sent every 100 ms.
  process.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url;
  process.env["OTEL_BSP_SCHEDULE_DELAY"] = "100";
  const engine = await startFakeLlamaCpp({ tokens: ["Hola", " a", " todos", "!"] });
  t.teardown(() => engine.close());
  const sys = await TestSystem.start({
    workers: [{ model: "hf:org/traced", flags: { "engine-url": engine.url, "serves-any-model": "false" } }],
  });
  t.teardown(() => sys.stop());

  const body = taskBody({ model_ref: "hf:org/traced", max_tokens: 4 });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${String(body["task_id"])}/stream`);
  await s.done;
  t.is(s.events.at(-1)?.event, "end");

  const mine = (): ReceivedSpan[] => receiver.spans.filter((x) => x.attributes[TASK_ID] === body["task_id"]);
  const named = (spans: ReceivedSpan[], name: string) => spans.find((x) => x.name === name);
  // Each process exports within a batch delay, in its own time: wait for the last span of each (the edge's request, the task's, the generation's).
  const edgeSpanOf = () => {
    const traceId = named(mine(), "llama_orch.admission")?.traceId;
    return receiver.spans.find((x) => x.traceId === traceId && x.name === "POST /v1/tasks");
  };
  for (let i = 0; i < 200 && !(named(mine(), "llama_orch.generation") && named(mine(), "llama_orch.task") && edgeSpanOf()); i++)
    await new Promise((r) => setTimeout(r, 50));

  const traceId = named(mine(), "llama_orch.admission")?.traceId;
  t.truthy(traceId, "core exported its admission span");
  const trace = receiver.spans.filter((x) => x.traceId === traceId);
  const byName = (name: string) => {
    const found = named(trace, name);
    t.truthy(found, `the trace has a ${name} span: ${trace.map((x) => `${x.service}:${x.name}`).join(", ")}`);
    return found!;
  };
  const edge = byName("POST /v1/tasks");
  const admission = byName("llama_orch.admission");
  const task = byName("llama_orch.task");
  const wait = byName("llama_orch.queue_wait");
  const dispatch = byName("llama_orch.dispatch");
  const generation = byName("llama_orch.generation");
  const engineCall = byName("POST /completion");

  t.deepEqual([...new Set(trace.map((x) => x.service))].sort(), ["llorch-core", "llorch-edge", "llorch-worker"]);
  t.deepEqual(
    [edge, admission, task, wait, dispatch, generation, engineCall].map((x) => x.service),
    ["llorch-edge", "llorch-core", "llorch-core", "llorch-core", "llorch-core", "llorch-worker", "llorch-worker"],
  );
  // Each hop's span is the child of the one before it; the edge's is the root (the client sent no traceparent).
  t.is(edge.parentSpanId, undefined);
  t.is(admission.parentSpanId, edge.spanId);
  t.is(task.parentSpanId, admission.spanId);
  t.is(wait.parentSpanId, task.spanId);
  t.is(dispatch.parentSpanId, task.spanId);
  t.is(generation.parentSpanId, dispatch.spanId);
  t.is(engineCall.parentSpanId, generation.spanId);
  t.true(
    mine()
      .filter((x) => x.service !== "llorch-edge")
      .every((x) => x.traceId === traceId),
    "every span core and the sidecar made for the task is in that one trace",
  );

  t.like(task.attributes, {
    [TASK_ID]: body["task_id"],
    "llama_orch.pool_id": "default",
    "llama_orch.replica_id": "r1",
    "llama_orch.tokens_out": 4,
  });
  t.like(dispatch.attributes, { "llama_orch.replica_id": "r1", "llama_orch.tokens_out": 4 });
  t.like(generation.attributes, { "llama_orch.pool_id": "default", "llama_orch.replica_id": "r1", "llama_orch.tokens_out": 4 });
  t.is(typeof generation.attributes["llama_orch.tokens_in"], "number");
  t.is(engineCall.attributes["http.response.status_code"], 200);

  // The engine got the trace on: its request's traceparent names the engine call's span.
  const sent = engine.generations().at(-1)!.headers["traceparent"];
  t.is(sent, `00-${traceId}-${engineCall.spanId}-01`);
});
