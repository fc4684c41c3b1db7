import test from "ava";
import { credentials, type ServerWritableStream } from "@grpc/grpc-js";
import { Engine } from "../../../contracts/gen/llama_orch/v1/common.js";
import {
  RegistryServiceService,
  type RegisterRequest,
  type RegisterResponse,
  type RegistryServiceServer,
} from "../../../contracts/gen/llama_orch/v1/registry.js";
import { WorkerServiceClient } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { startGrpcServer, type RunningGrpcServer } from "../../../contracts/runtime/grpc-server.js";
import { delayFor } from "../../../workers/sidecar/registration.js";
import { startWorker } from "../../../workers/sidecar/worker.js";
import { eventually, loadModel, logCapture, quietLogger } from "./helpers.js";

/** A stand-in for core's RegistryService that accepts everyone and remembers who is connected. */
class FakeCore {
  registrations: RegisterRequest[] = [];
  authorization: unknown[] = [];
  open = new Set<ServerWritableStream<RegisterRequest, RegisterResponse>>();
  private constructor(
    readonly server: RunningGrpcServer,
    readonly instanceId: string,
  ) {}

  static async start(port: number, instanceId: string, core = { current: undefined as FakeCore | undefined }): Promise<FakeCore> {
    const impl: RegistryServiceServer = {
      register(call) {
        const self = core.current!;
        self.registrations.push(call.request);
        self.authorization.push(call.metadata.get("authorization")[0]);
        self.open.add(call);
        call.on("cancelled", () => self.open.delete(call));
        call.write({ kind: { $case: "accepted", accepted: { coreInstanceId: self.instanceId, acceptedAtMs: Date.now() } } });
      },
      listReplicas(_call, cb) {
        cb(null, { replicas: [] });
      },
    };
    const server = await startGrpcServer({
      host: "127.0.0.1",
      port,
      services: [{ name: "llama_orch.v1.RegistryService", definition: RegistryServiceService, implementation: impl }],
      logger: quietLogger,
    });
    core.current = new FakeCore(server, instanceId);
    return core.current;
  }

  kill(): void {
    this.server.server.forceShutdown();
  }
}

test("a worker with a core address registers itself and keeps the stream open", async (t) => {
  const core = await FakeCore.start(0, "core-a");
  t.teardown(() => core.kill());
  const worker = await startWorker(
    { port: 0, coreAddress: core.server.address, coreApiKey: "s3cret", poolId: "gpu", engine: "tgi", mock: { slots: 3 } },
    quietLogger,
  );
  t.true(await eventually(() => core.open.size === 1));
  const { instanceId, ...registration } = core.registrations[0]!;
  t.deepEqual(registration, {
    address: worker.address,
    poolId: "gpu",
    replicaId: worker.replicaId,
    engine: Engine.ENGINE_TGI,
    modelRef: "mock:tiny",
    slotsTotal: 3,
    servesAnyModel: true,
    heldTaskIds: [],
  });
  t.regex(instanceId, /^[0-9a-f-]{36}$/, "a random instance id, which proves on re-registration that this is the same sidecar");
  t.is(core.authorization[0], "Bearer s3cret");
  await worker.stop();
  t.true(await eventually(() => core.open.size === 0), "stopping the worker ends its lease");
});

test("after core restarts the worker registers again, logging one line per state change", async (t) => {
  const holder = { current: undefined as FakeCore | undefined };
  const first = await FakeCore.start(0, "core-a", holder);
  const port = first.server.port;
  const { logger, lines } = logCapture();
  const worker = await startWorker({ port: 0, coreAddress: first.server.address }, logger);
  t.teardown(async () => {
    await worker.stop();
    holder.current?.kill();
  });
  t.true(await eventually(() => first.open.size === 1));

  first.kill();
  // Down long enough for several retries: 100, 200, 400 ms...
  await new Promise((r) => setTimeout(r, 800));
  const second = await FakeCore.start(port, "core-b", holder);
  t.true(await eventually(() => second.open.size === 1, 5_000));
  t.true(await eventually(() => lines.some((l) => l.core_instance_id === "core-b")));

  const registrationLines = lines.filter((l) => l.event === "registered" || l.event === "registration_lost");
  t.deepEqual(
    registrationLines.map((l) => [l.event, l.core_instance_id]),
    [
      ["registered", "core-a"],
      ["registration_lost", undefined],
      ["registered", "core-b"],
    ],
  );
});

test("a core that is not up yet is waited for, with one warning", async (t) => {
  const probe = await FakeCore.start(0, "probe");
  const port = probe.server.port;
  probe.kill();
  const { logger, lines } = logCapture();
  const worker = await startWorker({ port: 0, coreAddress: `127.0.0.1:${port}` }, logger);
  const holder = { current: undefined as FakeCore | undefined };
  t.teardown(async () => {
    await worker.stop();
    holder.current?.kill();
  });
  await new Promise((r) => setTimeout(r, 600));
  const core = await FakeCore.start(port, "late", holder);
  t.true(await eventually(() => core.open.size === 1, 5_000));
  t.true(await eventually(() => lines.some((l) => l.event === "registered")));
  t.is(lines.filter((l) => l.event === "registration_lost").length, 1);
  t.is(lines.filter((l) => l.event === "registered").length, 1);
});

test("backoff doubles from 100 ms to a 2 s cap with ±20% jitter", (t) => {
  const backoff = { initialMs: 100, maxMs: 2_000, jitter: 0.2 };
  for (let i = 0; i < 200; i++) {
    const first = delayFor(1, backoff);
    t.true(first >= 80 && first <= 120, `${first}`);
    const third = delayFor(3, backoff);
    t.true(third >= 320 && third <= 480, `${third}`);
    const capped = delayFor(30, backoff);
    t.true(capped >= 1_600 && capped <= 2_400, `${capped}`);
  }
});

test("after a LoadModel the worker registers again with the model it now serves", async (t) => {
  const core = await FakeCore.start(0, "core-a");
  t.teardown(() => core.kill());
  const worker = await startWorker(
    { port: 0, coreAddress: core.server.address, modelRef: "mock:old", mock: { reloadMs: 10 } },
    quietLogger,
  );
  t.teardown(() => worker.stop());
  t.true(await eventually(() => core.open.size === 1));
  const client = new WorkerServiceClient(worker.address, credentials.createInsecure());
  t.teardown(() => client.close());
  await loadModel(client, "mock:new");
  // Core ends the lease (as a restart would); the sidecar's next Register must carry the new model.
  for (const call of core.open) call.end();
  t.true(await eventually(() => core.registrations.length === 2 && core.open.size === 1, 5_000));
  t.deepEqual(
    core.registrations.map((r) => r.modelRef),
    ["mock:old", "mock:new"],
  );
});
