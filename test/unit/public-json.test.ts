import test from "ava";
import fc from "fast-check";
import { isDeepStrictEqual } from "node:util";
import type { DescMessage } from "@bufbuild/protobuf";
import * as artifact from "../../contracts/gen/llama_orch/v1/artifact.js";
import * as catalog from "../../contracts/gen/llama_orch/v1/catalog.js";
import * as common from "../../contracts/gen/llama_orch/v1/common.js";
import * as metrics from "../../contracts/gen/llama_orch/v1/metrics.js";
import * as pool from "../../contracts/gen/llama_orch/v1/pool.js";
import * as registry from "../../contracts/gen/llama_orch/v1/registry.js";
import * as session from "../../contracts/gen/llama_orch/v1/session.js";
import * as task from "../../contracts/gen/llama_orch/v1/task.js";
import * as worker from "../../contracts/gen/llama_orch/v1/worker.js";
import { protoRegistry } from "../../contracts/proto-registry.js";
import { publicJson, PublicJsonError } from "../../contracts/public-json.js";
import { arbitraryMessage } from "../support/message-arbitrary.js";

const { CreateTaskRequest, TaskEvent } = task;
const { EngineCapability, GetPoolHealthResponse } = pool;
const generated = [artifact, catalog, common, metrics, pool, registry, session, task, worker] as Record<string, unknown>[];

type Fns = { encode(m: unknown): { finish(): Uint8Array }; decode(b: Uint8Array): unknown; fromPartial(o: unknown): unknown };

/** The ts-proto functions of a message type, found by its generated name (Outer_Inner for nested types). */
function tsProto(typeName: string): Fns | undefined {
  const name = typeName.replace(/^llama_orch\.v1\./, "").replaceAll(".", "_");
  return generated.map((m) => m[name]).find((v): v is Fns => typeof v === "object" && v !== null && "fromPartial" in v);
}

const withNested = (m: DescMessage): DescMessage[] => [
  m,
  ...m.nestedMessages.filter((n) => !n.proto.options?.mapEntry).flatMap(withNested),
];
const llamaOrchMessages = () =>
  [...protoRegistry().files].filter((f) => f.name.startsWith("llama_orch/")).flatMap((f) => f.messages.flatMap(withNested));

function refusal(run: () => unknown): { field: string; message: string } {
  try {
    run();
  } catch (err) {
    if (err instanceof PublicJsonError) return { field: err.field, message: err.message };
    throw err;
  }
  throw new Error("expected a PublicJsonError");
}

const tasks = publicJson<task.CreateTaskRequest>("llama_orch.v1.CreateTaskRequest");

// ---------- round trips, for every message of proto/llama_orch ----------

test("every message round-trips: decode(encode(m)) is m, through JSON text too, and ts-proto's binary codec agrees with the shape", (t) => {
  const messages = llamaOrchMessages();
  t.true(messages.length > 30);
  for (const desc of messages) {
    const codec = publicJson<unknown>(desc.typeName);
    const fns = tsProto(desc.typeName);
    if (!fns) return t.fail(`no generated code for ${desc.typeName}`);
    fc.assert(
      fc.property(arbitraryMessage(desc), (m) => {
        const json = codec.encode(m);
        return (
          isDeepStrictEqual(codec.decode(json), m) &&
          isDeepStrictEqual(codec.decode(JSON.parse(JSON.stringify(json))), m) &&
          isDeepStrictEqual(fns.decode(fns.encode(m).finish()), m)
        );
      }),
      { numRuns: 25 },
    );
  }
  t.pass();
});

test("decode({}) is ts-proto's fromPartial({}) for every message: every field present with its default", (t) => {
  for (const desc of llamaOrchMessages())
    t.deepEqual(publicJson<unknown>(desc.typeName).decode({}), tsProto(desc.typeName)?.fromPartial({}), desc.typeName);
});

// ---------- names, enums, numbers ----------

test("a TaskRequest body decodes to the CreateTaskRequest it stands for", (t) => {
  const body = {
    task_id: "6f1c2a0e-7d4b-4e58-9b0a-2f3c4d5e6a7b",
    session_id: "3a9e8d7c-1b2f-4c6d-8e0f-a1b2c3d4e5f6",
    workload: "completion",
    model_ref: "hf:o/r",
    engine: "vllm",
    ctx: 8192,
    priority: "batch",
    seed: 42,
    determinism: "best_effort",
    prompt: "p",
    max_tokens: 512,
    deadline_ms: 600_000,
    expected_tokens: 300,
    kv_hint: "cold",
    placement: { mode: "pin", pin_pool_id: "pool-a", allow_fallback: false },
    unknown_member: 1,
  };
  t.deepEqual(
    tasks.decode(body),
    CreateTaskRequest.fromPartial({
      taskId: body.task_id,
      sessionId: body.session_id,
      workload: common.Workload.WORKLOAD_COMPLETION,
      modelRef: "hf:o/r",
      engine: common.Engine.ENGINE_VLLM,
      ctx: 8192,
      priority: common.Priority.PRIORITY_BATCH,
      seed: 42,
      determinism: common.Determinism.DETERMINISM_BEST_EFFORT,
      prompt: "p",
      maxTokens: 512,
      deadlineMs: 600_000,
      expectedTokens: 300,
      kvHint: common.KvHint.KV_HINT_COLD,
      placement: { mode: task.PlacementMode.PLACEMENT_MODE_PIN, pinPoolId: "pool-a", allowFallback: false },
    }),
  );
});

test("an unknown enum name is refused naming the field and the names it may be", (t) => {
  t.deepEqual(
    refusal(() => tasks.decode({ engine: "llama.cpp" })),
    { field: "/engine", message: "/engine must be one of llamacpp, vllm, tgi, triton, openai" },
  );
  t.is(refusal(() => tasks.decode({ engine: "LLAMACPP" })).field, "/engine", "names are case-sensitive");
  t.is(refusal(() => tasks.decode({ engine: 1 })).field, "/engine", "numbers are not names");
  t.is(refusal(() => tasks.decode({ placement: { mode: "pinned" } })).field, "/placement/mode");
  t.is(
    refusal(() => publicJson<unknown>("llama_orch.v1.EngineCapability").decode({ supported_workloads: ["completion", "chat"] })).field,
    "/supported_workloads",
  );
});

test("an enum number without a name cannot be encoded", (t) => {
  t.is(refusal(() => tasks.encode({ ...CreateTaskRequest.fromPartial({}), engine: 42 as common.Engine })).field, "/engine");
});

test("64-bit integers are JSON numbers; other kinds and out-of-range values are refused", (t) => {
  t.is(tasks.decode({ deadline_ms: 2 ** 40 }).deadlineMs, 2 ** 40);
  t.is(tasks.decode({ seed: -(2 ** 60) }).seed, -(2 ** 60));
  t.is(tasks.encode(CreateTaskRequest.fromPartial({ deadlineMs: 2 ** 40 })).deadline_ms, 2 ** 40);
  const field = (body: object) => refusal(() => tasks.decode(body)).field;
  t.is(field({ deadline_ms: "5" }), "/deadline_ms");
  t.is(field({ deadline_ms: 1.5 }), "/deadline_ms");
  t.is(field({ deadline_ms: -1 }), "/deadline_ms");
  t.is(field({ deadline_ms: 2 ** 64 }), "/deadline_ms");
  t.is(field({ ctx: 2 ** 32 }), "/ctx");
  t.is(field({ ctx: Number.NaN }), "/ctx");
  t.is(field({ prompt: 5 }), "/prompt");
  t.is(field({ placement: { allow_fallback: "yes" } }), "/placement/allow_fallback");
  t.regex(refusal(() => tasks.decode({ max_tokens: -3 })).message, /max_tokens must be a non-negative 32-bit integer/);
});

// ---------- presence, lists, messages, maps, oneofs ----------

test("an absent optional field is undefined and stays out of the JSON; an absent plain field is its default and is written", (t) => {
  const m = tasks.decode({});
  t.is(m.seed, undefined);
  t.is(m.placement, undefined);
  t.is(m.prompt, "");
  t.deepEqual(m.inputs, []);
  const json = tasks.encode(m);
  t.false("seed" in json || "placement" in json || "expected_tokens" in json);
  t.is(json.prompt, "");
  t.deepEqual(json.inputs, []);
  t.is(json.engine, "unspecified");
  t.is(tasks.encode(tasks.decode({ seed: 0 })).seed, 0, "an optional field set to its default is still set");
});

test("lists: not a list, or a scalar item of the wrong kind, names the list; a message item is addressed by index", (t) => {
  t.deepEqual(
    refusal(() => tasks.decode({ inputs: "a" })),
    { field: "/inputs", message: "/inputs must be a list of strings" },
  );
  t.is(refusal(() => tasks.decode({ inputs: ["a", 2] })).field, "/inputs");
  const health = publicJson<pool.GetPoolHealthResponse>("llama_orch.v1.GetPoolHealthResponse");
  t.is(refusal(() => health.decode({ metrics: { replicas: [{}, { slots_free: -1 }] } })).field, "/metrics/replicas/1/slots_free");
  t.is(refusal(() => health.decode({ metrics: { replicas: [1] } })).field, "/metrics/replicas/0");
  t.is(refusal(() => health.decode({ metrics: "full" })).field, "/metrics");
  t.deepEqual(
    refusal(() => health.decode([])),
    { field: "", message: "the value must be an object" },
  );
});

test("(omit_empty) leaves an empty string out and writes it once set", (t) => {
  const health = publicJson<pool.GetPoolHealthResponse>("llama_orch.v1.GetPoolHealthResponse");
  const quiet = health.encode(GetPoolHealthResponse.fromPartial({ metrics: { replicas: [{ replicaId: "r" }] } }));
  t.deepEqual(Object.keys(quiet.metrics as object).sort(), [
    "engine",
    "model_ref",
    "queue_depth",
    "reload_state",
    "replicas",
    "slots_free",
    "slots_total",
    "tasks_running",
  ]);
  t.false("last_error" in (quiet.metrics as { replicas: object[] }).replicas[0]!);
  const loud = health.encode(
    GetPoolHealthResponse.fromPartial({ metrics: { lastReloadError: "boom", replicas: [{ lastError: "gone" }] } }),
  );
  t.like(loud, { metrics: { last_reload_error: "boom", replicas: [{ last_error: "gone" }] } });
});

test("maps are JSON objects; a value of the wrong kind is refused at its key", (t) => {
  const caps = publicJson<pool.EngineCapability>("llama_orch.v1.EngineCapability");
  const features = JSON.parse('{"a/b":"x","__proto__":"y"}') as Record<string, string>;
  t.is(refusal(() => caps.decode({ features })).field, "/features/__proto__", "a __proto__ key could not cross gRPC, so it is refused");
  t.is(refusal(() => caps.decode({ features: { "a/b": 1 } })).field, "/features/a~1b");
  t.is(refusal(() => caps.decode({ features: ["x"] })).field, "/features");
  t.deepEqual(caps.encode(EngineCapability.fromPartial({ features: { k: "v" } })).features, { k: "v" });
});

test("a oneof is the one member that is present; two are refused", (t) => {
  const events = publicJson<task.TaskEvent>("llama_orch.v1.TaskEvent");
  const started = events.decode({ seq: 1, started: { queue_position: 2 } });
  t.deepEqual(started, TaskEvent.fromPartial({ seq: 1, kind: { $case: "started", started: { queuePosition: 2 } } }));
  t.deepEqual(events.encode(started), { seq: 1, started: { queue_position: 2, predicted_start_ms: 0 } });
  t.deepEqual(events.encode(TaskEvent.fromPartial({ seq: 3 })), { seq: 3 });
  t.is(
    refusal(() => events.decode({ seq: 1, started: {}, end: {} })).message,
    "the value may hold only one of started, tokens, metrics, end, error, embedding, rerank",
  );
});

// ---------- free-form JSON and limits ----------

const artifacts = publicJson<artifact.Artifact>("llama_orch.v1.Artifact");

test("Struct and ListValue fields are the JSON itself, copied; what JSON cannot carry is refused where it is", (t) => {
  const content = JSON.parse('{"a":[1,null,{"b":"c"}]}') as Record<string, unknown>;
  const m = artifacts.decode({ kind: "plan", content, tags: ["x"] });
  t.deepEqual(Object.keys(m.content!), ["a"]);
  t.is(refusal(() => artifacts.decode({ kind: "plan", content: JSON.parse('{"a":{"__proto__":{"x":1}}}') })).field, "/content/a/__proto__");
  t.not(m.content, content);
  t.deepEqual(m.tags, ["x"]);
  t.deepEqual(artifacts.decode({ kind: "plan", content: {}, tags: [] }).tags, [], "an empty list value is set");
  t.is(artifacts.decode({ kind: "plan", content: {} }).tags, undefined);
  t.is(refusal(() => artifacts.decode({ content: { x: [Number.NaN] } })).field, "/content/x/0");
  t.is(refusal(() => artifacts.decode({ content: { d: new Date(0) } })).field, "/content/d");
  t.is(refusal(() => artifacts.decode({ content: { n: 1n } })).field, "/content/n");
  t.is(refusal(() => artifacts.decode({ content: { l: [1, undefined] } })).field, "/content/l/1");
  t.is(refusal(() => artifacts.decode({ content: [1] })).field, "/content");
  t.is(refusal(() => artifacts.decode({ content: null })).field, "/content");
  t.is(refusal(() => artifacts.decode({ tags: "x" })).field, "/tags");
  t.deepEqual(artifacts.decode({ content: { x: 1, y: undefined } }).content, { x: 1 }, "an undefined member is an absent one");
  t.is(refusal(() => artifacts.encode({ ...m, content: { x: Number.POSITIVE_INFINITY } })).field, "/content/x");
});

test("input nested past the stack is refused, not a crash", (t) => {
  let deep: unknown = 0;
  for (let i = 0; i < 200_000; i++) deep = [deep];
  t.deepEqual(
    refusal(() => artifacts.decode({ content: { deep } })),
    { field: "", message: "the value is nested too deeply" },
  );
});

test("types the mapping does not know are refused when first used, by name", (t) => {
  t.throws(() => publicJson<unknown>("google.rpc.Status").decode({}), { message: /google\.protobuf\.Any is not supported|bytes field/ });
  t.throws(() => publicJson<unknown>("llama_orch.v1.NoSuchMessage").decode({}), { message: /llama_orch\.v1\.NoSuchMessage/ });
});
