import test from "ava";
import { loadApiDocuments } from "../../contracts/openapi.js";
import { startFakeVllm } from "../fakes/openai-fake.js";
import { requestIntegerInputs, withValueAt, type IntegerInput } from "../support/integer-inputs.js";
import type { Json } from "../support/json.js";
import { TestSystem } from "../support/system.js";
import { taskBody } from "../support/task-body.js";

// Every integer a client can send, at and beyond its declared bounds and at
// the values protobuf and JavaScript cannot carry: a value the contract
// allows is never a 5xx, and one it does not is a 400 naming the field.

let sys: TestSystem;
let closeFake: () => Promise<void>;
const CATALOG_ID = "bounds-model";

test.before(async () => {
  const fake = await startFakeVllm({ task: "embed", embeddingDims: 4 });
  closeFake = () => fake.close();
  sys = await TestSystem.start({
    workers: [
      { replica: "mock", slots: 4 },
      { replica: "spare", pool: "spare", slots: 1 },
      {
        replica: "pooled",
        engine: "vllm",
        model: "fake-model",
        flags: { "engine-url": fake.url, "engine-model": "fake-model", "serves-any-model": "false", workloads: "embedding,rerank" },
      },
    ],
  });
  const created = await send("POST", "/v1/catalog/models", { id: CATALOG_ID, digest: "sha256:01ab23cd45ef" });
  if (created.status !== 201) throw new Error(`catalog entry not created: ${created.status} ${created.text}`);
});
test.after.always(async () => {
  await sys?.stop();
  await closeFake?.();
});

const chat = { model: "mock:tiny", max_tokens: 2, messages: [{ role: "user", content: "hi" }] };

/** Per operation: the concrete path, a body it accepts, and the status that says so. */
const TARGETS: Record<string, { path: string; ok: number; body?: () => Json }> = {
  listTasks: { path: "/v1/tasks", ok: 200 },
  createTask: { path: "/v1/tasks", ok: 202, body: () => taskBody({ max_tokens: 2 }) },
  listCatalogModels: { path: "/v1/catalog/models", ok: 200 },
  createCatalogModel: {
    path: "/v1/catalog/models",
    ok: 201,
    body: () => ({
      id: `m-${crypto.randomUUID()}`,
      digest: "sha256:01ab23cd45ef",
      manifests: [{ digest: "sha256:01ab23cd45ef", size_bytes: 1 }],
    }),
  },
  setCatalogModelState: { path: `/v1/catalog/models/${CATALOG_ID}/state`, ok: 202, body: () => ({ state: "Active", deadline_ms: 1000 }) },
  drainPool: { path: "/v1/pools/spare/drain", ok: 202, body: () => ({ deadline_ms: 1000 }) },
  createArtifact: { path: "/v1/artifacts", ok: 201, body: () => ({ kind: "trace", content: { n: 1 } }) },
  createChatCompletion: { path: "/v1/chat/completions", ok: 200, body: () => ({ ...chat }) },
  createCompletion: { path: "/v1/completions", ok: 200, body: () => ({ model: "mock:tiny", prompt: "hi", max_tokens: 2 }) },
  createEmbedding: { path: "/v1/embeddings", ok: 200, body: () => ({ model: "fake-model", input: ["a", "b"] }) },
  rerank: { path: "/v1/rerank", ok: 200, body: () => ({ model: "fake-model", query: "q", documents: ["a", "b"], top_n: 1 }) },
  createMessage: { path: "/v1/messages", ok: 200, body: () => ({ ...chat }) },
  countMessageTokens: { path: "/v1/messages/count_tokens", ok: 200, body: () => ({ model: "mock:tiny", messages: chat.messages }) },
};

const SAFE = Number.MAX_SAFE_INTEGER;
/** Integers no int64 field can take as a JSON number here: past 2^53, past int64 and uint64, far past anything. */
const EXTREMES = [SAFE + 1, -(SAFE + 1), 2 ** 63, 2 ** 64, 1e300, -1e300, 0.5];

interface Probe {
  value: number;
  allowed: boolean;
}

function probes(input: IntegerInput): Probe[] {
  const { minimum: min, maximum: max } = input;
  const allowed = (v: number) => Number.isInteger(v) && (min === undefined || v >= min) && (max === undefined || v <= max);
  const values = [min, max, min === undefined ? undefined : min - 1, max === undefined ? undefined : max + 1, ...EXTREMES];
  return [...new Set(values.filter((v): v is number => v !== undefined))].map((value) => ({ value, allowed: allowed(value) }));
}

async function send(method: string, path: string, body?: Json, headers: Record<string, string> = {}) {
  const res = await fetch(sys.edgeUrl + path, {
    method: method.toUpperCase(),
    headers: body === undefined ? headers : { "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

async function probe(input: IntegerInput, value: number) {
  const target = TARGETS[input.operationId]!;
  const base = target.body?.();
  if (input.in === "body") return send(input.method, target.path, withValueAt(base, input.name, value));
  if (input.in === "query") return send(input.method, `${target.path}?${input.name}=${encodeURIComponent(String(value))}`, base);
  return send(input.method, target.path, base, { [input.name]: String(value) });
}

/** The field a 400 names, in whichever error shape the API answers with. */
function namesField(input: IntegerInput, text: string): boolean {
  const body: Json = JSON.parse(text);
  if (typeof body.field === "string") return body.field === input.name;
  const last = input.name.split("/").pop()!;
  const error = body.error ?? {};
  return error.param === last || error.param === input.name || String(error.message).includes(last);
}

const inputs = requestIntegerInputs(loadApiDocuments().merged);

test("every operation that takes an integer is probed here", (t) => {
  const missing = [...new Set(inputs.map((i) => i.operationId))].filter((id) => !(id in TARGETS));
  t.deepEqual(missing, [], "add a target for each (path, a body it accepts, its success status)");
  t.true(inputs.length > 20);
});

test.serial("each probed operation accepts its base request", async (t) => {
  for (const id of new Set(inputs.map((i) => i.operationId))) {
    const target = TARGETS[id]!;
    const input = inputs.find((i) => i.operationId === id)!;
    const res = await send(input.method, target.path, target.body?.());
    t.is(res.status, target.ok, `${id}: ${res.text.slice(0, 200)}`);
  }
});

test.serial("integers at and past their bounds: never a 5xx; outside the contract a 400 naming the field", async (t) => {
  const failures: string[] = [];
  let sent = 0;
  for (const input of inputs) {
    for (const { value, allowed } of probes(input)) {
      const res = await probe(input, value);
      sent++;
      const what = `${input.operationId} ${input.in} ${input.name}=${value} -> ${res.status} ${res.text.slice(0, 160)}`;
      if (res.status >= 500) failures.push(`5xx: ${what}`);
      else if (!allowed && (res.status !== 400 || !namesField(input, res.text))) failures.push(`not a 400 naming the field: ${what}`);
    }
  }
  t.deepEqual(failures, [], `${failures.length} of ${sent} probes failed`);
  t.log(`${sent} probes over ${inputs.length} integer inputs`);
});
