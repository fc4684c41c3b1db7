import test from "ava";
import { execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { BadRequest, ErrorInfo } from "../../contracts/gen/google/rpc/error_details.js";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import { TestSystem } from "../support/system.js";

const buf = join(projectRoot(), "node_modules", ".bin", "buf");
const run = promisify(execFile);
const curlArgs = ["curl", "--protocol", "grpc", "--http2-prior-knowledge"];

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({ workers: [{ replica: "r1" }] });
});
test.after.always(async () => sys?.stop());

async function bufCurl(...args: string[]): Promise<string> {
  const { stdout } = await run(buf, [...curlArgs, ...args], { timeout: 20_000 });
  return stdout;
}

test("buf curl lists core's services through reflection", async (t) => {
  const out = await bufCurl("--list-methods", `http://${sys.coreAddress}`);
  for (const m of [
    "llama_orch.v1.TaskService/CreateTask",
    "llama_orch.v1.TaskService/StreamTask",
    "llama_orch.v1.TaskService/CancelTask",
    "llama_orch.v1.RegistryService/Register",
    "grpc.health.v1.Health/Check",
  ]) {
    t.true(out.includes(m), `${m} listed`);
  }
});

test("buf curl lists a sidecar's services and calls its map-using Info and grpc.health.v1 List", async (t) => {
  const worker = sys.worker("r1").address;
  const out = await bufCurl("--list-methods", `http://${worker}`);
  for (const m of ["Health", "WatchHealth", "Props", "WatchProps", "Submit", "Cancel", "Info"])
    t.true(out.includes(`llama_orch.v1.WorkerService/${m}`), m);
  const info = JSON.parse(await bufCurl(`http://${worker}/llama_orch.v1.WorkerService/Info`));
  t.is(info.replicaId, "r1");
  t.is(typeof info.features, "object", "map<string,string> decodes through reflected descriptors");
  const list = JSON.parse(await bufCurl(`http://${worker}/grpc.health.v1.Health/List`));
  t.is(list.statuses["llama_orch.v1.WorkerService"].status, "SERVING");
});

test("buf curl streams WatchHealth from a sidecar", async (t) => {
  const worker = sys.worker("r1").address;
  const child = spawn(buf, [...curlArgs, `http://${worker}/llama_orch.v1.WorkerService/WatchHealth`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.teardown(() => child.kill("SIGKILL"));
  let out = "";
  const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no WatchHealth message; got ${out}`)), 15_000);
    child.stdout.setEncoding("utf8").on("data", (s: string) => {
      out += s;
      // buf curl prints each streamed message as a pretty JSON object.
      const end = out.indexOf("\n}");
      if (end >= 0) {
        clearTimeout(timer);
        resolve(JSON.parse(out.slice(0, end + 2)) as Record<string, unknown>);
      }
    });
    child.once("exit", (code) => reject(new Error(`buf curl exited ${code}: ${out}`)));
  });
  t.deepEqual((first as { health: { live: boolean; ready: boolean } }).health.live, true);
  t.deepEqual((first as { health: { live: boolean; ready: boolean } }).health.ready, true);
});

test("a plain @grpc/grpc-js client can admit and stream a task straight from core", async (t) => {
  const { credentials } = await import("@grpc/grpc-js");
  const { TaskServiceClient, CreateTaskRequest } = await import("../../contracts/gen/llama_orch/v1/task.js");
  const { Engine, Priority, Workload } = await import("../../contracts/gen/llama_orch/v1/common.js");
  const client = new TaskServiceClient(sys.coreAddress, credentials.createInsecure());
  t.teardown(() => client.close());
  const taskId = crypto.randomUUID();
  await new Promise<void>((resolve, reject) =>
    client.createTask(
      CreateTaskRequest.fromPartial({
        taskId,
        sessionId: crypto.randomUUID(),
        workload: Workload.WORKLOAD_COMPLETION,
        modelRef: "m",
        engine: Engine.ENGINE_LLAMACPP,
        ctx: 512,
        priority: Priority.PRIORITY_BATCH,
        prompt: "hi",
        maxTokens: 5,
        deadlineMs: 10_000,
      }),
      (err) => (err ? reject(err) : resolve()),
    ),
  );
  const kinds: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = client.streamTask({ taskId });
    call.on("data", (m: { events: { kind?: { $case: string; tokens?: { texts: string[] } } }[] }) => {
      for (const e of m.events) {
        if (e.kind?.$case === "tokens") for (const _ of e.kind.tokens!.texts) kinds.push("token");
        else kinds.push(e.kind!.$case);
      }
    });
    call.on("end", resolve);
    call.on("error", reject);
  });
  t.is(kinds[0], "started");
  t.is(kinds.at(-1), "end");
  t.is(kinds.filter((k) => k === "token").length, 5);
});

test("buf curl shows a refused CreateTask's google.rpc.ErrorInfo: reason ERROR_CODE_INVALID_PARAMS and the field at fault", async (t) => {
  const request = {
    taskId: crypto.randomUUID(),
    sessionId: crypto.randomUUID(),
    workload: "WORKLOAD_COMPLETION",
    modelRef: "m",
    engine: "ENGINE_LLAMACPP",
    ctx: 64,
    priority: "PRIORITY_BATCH",
    prompt: "hi",
    maxTokens: 100,
    deadlineMs: 10_000,
  };
  const err = await t.throwsAsync<Error & { stderr: string }>(
    bufCurl("-d", JSON.stringify(request), `http://${sys.coreAddress}/llama_orch.v1.TaskService/CreateTask`),
  );
  const printed = JSON.parse(err.stderr) as { code: string; message: string; details: { type: string; value: string }[] };
  t.is(printed.code, "invalid_argument");
  t.regex(printed.message, /max_tokens 100 does not fit in ctx 64/);
  t.deepEqual(
    printed.details.map((d) => d.type),
    ["google.rpc.ErrorInfo", "google.rpc.BadRequest"],
  );
  // buf curl prints each detail's bytes in base64 (it renders JSON only for types compiled into it); they are Google's messages.
  const bytesOf = (type: string) => Buffer.from(printed.details.find((d) => d.type === type)!.value, "base64");
  t.deepEqual(ErrorInfo.decode(bytesOf("google.rpc.ErrorInfo")), {
    reason: "ERROR_CODE_INVALID_PARAMS",
    domain: "llama-orch.v1",
    metadata: { field: "/max_tokens" },
  });
  t.deepEqual(
    BadRequest.decode(bytesOf("google.rpc.BadRequest")).fieldViolations.map((v) => v.field),
    ["/max_tokens"],
  );
});

test("reflection describes google.rpc.ErrorInfo, so a tool that resolves error details through it can print them", async (t) => {
  const schema = join(
    projectRoot(),
    "node_modules",
    "@grpc",
    "reflection",
    "build",
    "proto",
    "grpc",
    "reflection",
    "v1",
    "reflection.proto",
  );
  const out = await bufCurl(
    "--schema",
    schema,
    "-d",
    JSON.stringify({ fileContainingSymbol: "google.rpc.ErrorInfo" }),
    `http://${sys.coreAddress}/grpc.reflection.v1.ServerReflection/ServerReflectionInfo`,
  );
  const files = (JSON.parse(out) as { fileDescriptorResponse: { fileDescriptorProto: string[] } }).fileDescriptorResponse
    .fileDescriptorProto;
  const nameOf = (b64: string) => {
    // FileDescriptorProto { string name = 1; ... }
    const reader = new BinaryReader(Buffer.from(b64, "base64"));
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === 1) return reader.string();
      reader.skip(wireType);
    }
    return undefined;
  };
  t.deepEqual(files.map(nameOf).sort(), ["google/protobuf/duration.proto", "google/rpc/error_details.proto"]);
});
