import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { CreateTaskRequest, TaskServiceClient } from "../../contracts/gen/llama_orch/v1/task.js";
import { Engine, Priority, Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { identityOf } from "../../contracts/runtime/api-key.js";
import { launchLlorch, stopProcess } from "../../cli/process-launcher.js";
import { api, stream, taskBody } from "../support/http.js";
import { listReplicas } from "../support/grpc.js";
import { LLORCH, TestSystem } from "../support/system.js";

const KEY = "llorch-test-secret-0f3a9c";
const WRONG = "not-the-key-77e1";
const run = promisify(execFile);

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({ apiKey: KEY, workers: [{ replica: "w1", slots: 2 }] });
});
test.after.always(async () => sys?.stop());

const bearer = (k: string) => ({ Authorization: `Bearer ${k}` });

test("a missing key is 401 UNAUTHORIZED, a wrong one 403 FORBIDDEN, both with the envelope", async (t) => {
  const missing = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody() });
  t.is(missing.status, 401);
  t.is(missing.json.code, "UNAUTHORIZED");
  t.regex(missing.headers.get("www-authenticate") ?? "", /^Bearer/);
  const wrong = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody(), headers: bearer(WRONG) });
  t.is(wrong.status, 403);
  t.is(wrong.json.code, "FORBIDDEN");
  const id = crypto.randomUUID();
  t.is((await api(t, sys.edgeUrl, "GET", `/v1/tasks/${id}/stream`)).status, 401);
  t.is((await api(t, sys.edgeUrl, "GET", `/v1/sessions/${id}`, { headers: bearer(WRONG) })).status, 403);
});

test("the right key admits and streams, through edge, core and a sidecar that registered with the key", async (t) => {
  const body = taskBody({ max_tokens: 4 });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body, headers: bearer(KEY) })).status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`, bearer(KEY));
  await s.done;
  t.is(s.events.at(-1)!.event, "end");
  t.is((await api(t, sys.edgeUrl, "GET", "/openapi.json")).status, 200, "the API description stays public");
});

test("core refuses gRPC task calls without the key; a sidecar without it cannot register", async (t) => {
  const client = new TaskServiceClient(sys.coreAddress, credentials.createInsecure());
  t.teardown(() => client.close());
  const request = CreateTaskRequest.fromPartial({
    taskId: crypto.randomUUID(),
    sessionId: crypto.randomUUID(),
    workload: Workload.WORKLOAD_COMPLETION,
    modelRef: "m",
    engine: Engine.ENGINE_LLAMACPP,
    ctx: 64,
    priority: Priority.PRIORITY_BATCH,
    prompt: "x",
    maxTokens: 1,
    deadlineMs: 1000,
  });
  const err = await new Promise<ServiceError | null>((resolve) => client.createTask(request, new Metadata(), (e) => resolve(e)));
  t.is(err?.code, 16, "UNAUTHENTICATED");

  const intruder = launchLlorch("intruder", ["worker", "--port", "0", "--core", sys.coreAddress, "--replica", "intruder"], {
    script: LLORCH,
    nodeArgs: [],
    env: { LLORCH_API_KEY: WRONG },
  });
  t.teardown(() => stopProcess(intruder));
  await intruder.ready;
  await new Promise((r) => setTimeout(r, 500));
  const replicas = await listReplicas(sys.coreAddress, KEY);
  t.deepEqual(
    replicas.map((r) => r.replicaId),
    ["w1"],
  );
  t.true(
    intruder.lines.some((l) => l.includes("registration_lost") && l.includes("not valid")),
    "the sidecar says why",
  );
});

test("logs name callers by fingerprint and never contain a key", async (t) => {
  const body = taskBody({ max_tokens: 2 });
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body, headers: bearer(KEY) });
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody(), headers: bearer(WRONG) });
  await new Promise((r) => setTimeout(r, 300));
  const lines = sys.allLogLines();
  t.true(
    lines.some((l) => l.includes(`"identity":"${identityOf(KEY)}"`)),
    "identity=token:<fp6> on the edge's lines",
  );
  t.deepEqual(
    lines.filter((l) => l.includes(KEY) || l.includes(WRONG)),
    [],
  );
});

test("edge and core refuse to listen beyond loopback without a key", async (t) => {
  for (const cmd of ["edge", "core"]) {
    const r = await run(process.execPath, [LLORCH, cmd, "--host", "0.0.0.0", "--port", "0"], {
      env: { ...process.env, LLORCH_API_KEY: "" },
      timeout: 20_000,
    }).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );
    t.is(r.code, 1, cmd);
    t.regex(r.stderr, /refusing to start .* without an API key/);
  }
});

test("with --auth-optional, loopback clients may omit the key", async (t) => {
  const open = await TestSystem.start({ apiKey: KEY, edgeFlags: { "auth-optional": "" }, workers: [{ replica: "w" }] });
  t.teardown(() => open.stop());
  t.is((await api(t, open.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1 }) })).status, 202);
  t.is(
    (await api(t, open.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1 }), headers: bearer(WRONG) })).status,
    403,
    "a wrong key is still wrong",
  );
  await new Promise((r) => setTimeout(r, 300));
  t.true(open.allLogLines().some((l) => l.includes('"identity":"localhost"')));
});
