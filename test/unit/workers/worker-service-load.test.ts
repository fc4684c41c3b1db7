import test, { type ExecutionContext } from "ava";
import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { ErrorCode } from "../../../contracts/gen/llama_orch/v1/common.js";
import {
  WorkerErrorKind,
  type WorkerServiceClient,
  type HealthResponse,
  type LoadModelResponse,
  type WorkerHealth,
  type WorkerLoadState,
} from "../../../contracts/gen/llama_orch/v1/worker.js";
import { errorDetailOf } from "../../../contracts/runtime/error-status.js";
import { ChangeListeners } from "../../../workers/change-listeners.js";
import { WorkerFailure, type EngineAdapter, type LoadModelOptions } from "../../../workers/engine-adapter.js";
import { MockEngine } from "../../../workers/mock/mock-engine.js";
import { ProvisionError } from "../../../workers/provision/provision-error.js";
import { eventually, firstMatching, submitAll, submitRequest } from "./helpers.js";
import { serveWorkerService } from "./worker-service-harness.js";

/** A mock whose health, load state and LoadModel outcome a test sets: what WorkerService makes of them. */
class ScriptedAdapter implements EngineAdapter {
  readonly engine = new MockEngine({ slots: 2 });
  readonly loads: { modelRef: string; options: LoadModelOptions | undefined }[] = [];
  healthNow: WorkerHealth = { live: true, ready: true, lastError: "" };
  loadNow: WorkerLoadState | undefined;
  loadFailure: Error | undefined;
  private readonly changes = new ChangeListeners<WorkerHealth>();

  info = () => this.engine.info();
  health = () => this.healthNow;
  loadState = () => this.loadNow;
  onHealthChange = (listener: (h: WorkerHealth) => void) => this.changes.add(listener);
  slotsTotal = () => 2;
  generate: EngineAdapter["generate"] = (request, signal, sink) => this.engine.generate(request, signal, sink);
  start = () => this.engine.start();
  stop = () => this.engine.stop();

  // eslint-disable-next-line @typescript-eslint/require-await -- a LoadModel is asynchronous by contract
  async loadModel(modelRef: string, options?: LoadModelOptions): Promise<void> {
    this.loads.push({ modelRef, options });
    if (this.loadFailure) throw this.loadFailure;
  }

  set(health: WorkerHealth, load?: WorkerLoadState): void {
    this.healthNow = health;
    this.loadNow = load;
    this.changes.emit(health);
  }
}

async function serve(t: ExecutionContext, adapter: ScriptedAdapter): Promise<WorkerServiceClient> {
  await adapter.start();
  return serveWorkerService(t, adapter);
}

const healthOf = (client: WorkerServiceClient) =>
  new Promise<HealthResponse>((resolve, reject) => client.health({}, (err, res) => (err ? reject(err) : resolve(res))));

const load = (client: WorkerServiceClient, modelRef: string, expectedDigest = "") =>
  new Promise<LoadModelResponse>((resolve, reject) =>
    client.loadModel({ modelRef, expectedDigest }, (err, res) => (err ? reject(err) : resolve(res))),
  );

const failureOf = (p: Promise<unknown>) =>
  p.then(
    () => Promise.reject(new Error("expected the call to fail")),
    (err: ServiceError) => err,
  );

const DIGEST = `sha256:${"ab".repeat(32)}`;
const progress = { phase: "downloading", bytesDone: 10, bytesTotal: 40, bytesPerSecond: 5, subject: "hf:org/repo/m.gguf" };

test("Health and WatchHealth carry the adapter's load state, and WatchHealth sends its changes", async (t) => {
  const adapter = new ScriptedAdapter();
  const client = await serve(t, adapter);
  t.deepEqual(await healthOf(client), { health: { live: true, ready: true, lastError: "" }, load: undefined });
  const call = client.watchHealth({});
  const seen: { load?: WorkerLoadState }[] = [];
  call.on("data", (m: { load?: WorkerLoadState }) => seen.push(m));
  call.on("error", () => {});
  await firstMatching(call, () => true);
  adapter.set({ live: true, ready: false, lastError: "downloading" }, { progress, wakesOnSubmit: false });
  t.true(await eventually(() => seen.length >= 2));
  call.cancel();
  t.deepEqual(seen[1]!.load, { progress, wakesOnSubmit: false });
  t.deepEqual((await healthOf(client)).load, { progress, wakesOnSubmit: false });
});

test("LoadModel hands the expected digest to the adapter and refuses a malformed one", async (t) => {
  const adapter = new ScriptedAdapter();
  const client = await serve(t, adapter);
  await load(client, "hf:org/repo/m.gguf", DIGEST);
  await load(client, "hf:org/repo/n.gguf");
  t.deepEqual(adapter.loads, [
    { modelRef: "hf:org/repo/m.gguf", options: { expectedDigest: DIGEST } },
    { modelRef: "hf:org/repo/n.gguf", options: undefined },
  ]);
  const err = await failureOf(load(client, "hf:org/repo/m.gguf", "md5:123"));
  t.is(err.code, GrpcStatus.INVALID_ARGUMENT);
  t.is(err.details, 'expected_digest must be "sha256:<64 hex digits>" or empty');
  t.is(adapter.loads.length, 2, "nothing was loaded");
});

test("a load refused for a digest mismatch carries UNTRUSTED_ARTIFACT in the status details; other failures do not", async (t) => {
  const adapter = new ScriptedAdapter();
  const client = await serve(t, adapter);
  const mismatch = new ProvisionError("digest_mismatch", "sha256 x is not the expected y");
  adapter.loadFailure = new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST, "failed to load m: digest mismatch", false, {
    cause: mismatch,
  });
  const err = await failureOf(load(client, "hf:org/repo/m.gguf", DIGEST));
  t.is(err.code, GrpcStatus.FAILED_PRECONDITION);
  t.is(err.details, "failed to load m: digest mismatch");
  t.like(errorDetailOf(err), { code: ErrorCode.ERROR_CODE_UNTRUSTED_ARTIFACT, message: "failed to load m: digest mismatch" });

  adapter.loadFailure = new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST, "failed to load m: not found", false, {
    cause: new ProvisionError("not_found", "no such file"),
  });
  const other = await failureOf(load(client, "hf:org/repo/m.gguf"));
  t.is(other.code, GrpcStatus.FAILED_PRECONDITION);
  t.is(errorDetailOf(other), undefined);
});

test("a submit reaches an unready adapter whose model wakes on submit, and is refused by one that does not", async (t) => {
  const adapter = new ScriptedAdapter();
  const client = await serve(t, adapter);
  adapter.set({ live: true, ready: false, lastError: "unloaded after 1 s idle; the next task loads it" });
  const refused = (await submitAll(client, submitRequest({ maxTokens: 2 }))).at(-1)?.event;
  t.like(refused?.$case === "error" ? refused.error : undefined, {
    kind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE,
    retriable: true,
  });
  adapter.set(
    { live: true, ready: false, lastError: "unloaded after 1 s idle; the next task loads it" },
    { progress: undefined, wakesOnSubmit: true },
  );
  const events = await submitAll(client, submitRequest({ taskId: "task-2", maxTokens: 2 }));
  t.is(events.at(-1)?.event?.$case, "end", "the adapter ran it");
});
