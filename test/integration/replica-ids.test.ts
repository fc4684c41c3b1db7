import test from "ava";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { Engine } from "../../contracts/gen/llama_orch/v1/common.js";
import { RegistryServiceClient, type RegisterRequest } from "../../contracts/gen/llama_orch/v1/registry.js";
import { launchLlorch, stopProcess } from "../../cli/process-launcher.js";
import { api, stream, taskBody, tokenIndices } from "../support/http.js";
import { keyMetadata } from "../support/grpc.js";
import { LLORCH, TestSystem } from "../support/system.js";

// A registration owns its replica id: while its sidecar answers, nobody else may take the id,
// not even with a valid worker key (here the API key, which holds every role).
const KEY = "replica-ids-test-key";
const bearer = { Authorization: `Bearer ${KEY}` };
const pinned = (pool: string, extra: Record<string, unknown> = {}) =>
  taskBody({ placement: { mode: "pin", pin_pool_id: pool, allow_fallback: false }, ...extra });

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({
    apiKey: KEY,
    workers: [
      { pool: "held", replica: "held-1", slots: 2, tokensPerSecond: 40 },
      { pool: "restart", replica: "restart-1", slots: 1 },
      { pool: "silent", replica: "silent-1", slots: 1 },
    ],
  });
});
test.after.always(async () => sys?.stop());

function register(request: Partial<RegisterRequest>): Promise<ServiceError | "accepted"> {
  const client = new RegistryServiceClient(sys.coreAddress, credentials.createInsecure());
  const full: RegisterRequest = {
    address: "127.0.0.1:1",
    poolId: "held",
    replicaId: "held-1",
    engine: Engine.ENGINE_LLAMACPP,
    modelRef: "mock:tiny",
    slotsTotal: 8,
    servesAnyModel: true,
    instanceId: crypto.randomUUID(),
    heldTaskIds: [],
    ...request,
  };
  return new Promise<ServiceError | "accepted">((resolve) => {
    const call = client.register(full, keyMetadata(KEY));
    call.on("data", () => {
      call.cancel();
      resolve("accepted");
    });
    call.on("error", (e: ServiceError) => resolve(e));
  }).finally(() => client.close());
}

const addressOf = async (id: string) => (await sys.replicas()).find((r) => r.replicaId === id)?.address;

test("an impostor's registration under a live replica id is refused ALREADY_EXISTS, and the real replica's stream goes on to its end", async (t) => {
  const real = await addressOf("held-1");
  const body = pinned("held", { max_tokens: 40 });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body, headers: bearer })).status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id as string}/stream`, bearer);
  await s.waitFor(3, "token");

  const refused = await register({});
  t.is(refused !== "accepted" && refused.code, status.ALREADY_EXISTS);
  t.regex(refused !== "accepted" ? refused.details : "", /replica id held-1 is held by a live sidecar at 127\.0\.0\.1:\d+/);

  // A whole impostor sidecar, retrying as sidecars do, fares no better.
  const impostor = launchLlorch("impostor", ["worker", "--port", "0", "--core", sys.coreAddress, "--pool", "held", "--replica", "held-1"], {
    script: LLORCH,
    nodeArgs: [],
    env: { LLORCH_API_KEY: KEY },
  });
  t.teardown(() => stopProcess(impostor));
  await impostor.ready;
  await s.done;
  const tokens = tokenIndices(s.events);
  t.deepEqual(tokens, [...Array(40).keys()], "every token, in order, from the real replica");
  t.is(s.events.at(-1)!.event, "end");
  t.is(await addressOf("held-1"), real);
  const saysWhy = () => impostor.lines.some((l) => l.includes('"registration_lost"') && l.includes("is held by a live sidecar"));
  for (const until = Date.now() + 5_000; !saysWhy() && Date.now() < until;) await new Promise((r) => setTimeout(r, 50));
  t.true(saysWhy(), `the impostor's log says why it is not registered: ${impostor.lines.slice(-2).join("\n")}`);
  t.is(await addressOf("held-1"), real, "and it still is not");
  t.true(sys.logsOf(sys.core, '"registration_refused"').length > 0);
});

test("a sidecar restarted under its replica id (a new instance, the old one dead) is accepted", async (t) => {
  await sys.killWorker("restart-1");
  await sys.restartWorker("restart-1");
  await sys.waitForReadyReplicas(3);
  const body = pinned("restart", { max_tokens: 3 });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body, headers: bearer })).status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id as string}/stream`, bearer);
  await s.done;
  t.is(s.events.at(-1)!.event, "end");
});

test("a holder that stops answering loses its id to a new instance, which then serves", async (t) => {
  const old = sys.worker("silent-1");
  old.proc.child.kill("SIGSTOP");
  const stoppedAt = Date.now();
  t.teardown(() => old.proc.child.kill("SIGCONT"));
  const successor = launchLlorch(
    "successor",
    ["worker", "--port", "0", "--core", sys.coreAddress, "--pool", "silent", "--replica", "silent-1"],
    {
      script: LLORCH,
      nodeArgs: [],
      env: { LLORCH_API_KEY: KEY },
    },
  );
  t.teardown(() => stopProcess(successor));
  const address = (await successor.ready).address!;
  const until = Date.now() + 15_000;
  while ((await addressOf("silent-1")) !== address && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  t.is(await addressOf("silent-1"), address, "the new instance holds the id");
  const tookOverAfterMs = Date.now() - stoppedAt;
  await sys.waitForReadyReplicas(3);
  const body = pinned("silent", { max_tokens: 3 });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body, headers: bearer })).status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id as string}/stream`, bearer);
  await s.done;
  t.is(s.events.at(-1)!.event, "end");
  const reasons = sys.logsOf(sys.core, '"replica_left"').map((l) => String(l.reason));
  // gRPC keepalive (10 s, then 5 s) ends a silent holder's stream too; before it can have, only asking the holder explains the takeover.
  if (tookOverAfterMs < 10_000)
    t.true(
      reasons.some((r) => r.includes("stopped answering")),
      `core says why the old registration went: ${reasons.join("; ")}`,
    );
  else t.log(`took ${tookOverAfterMs} ms on a loaded machine; the old registration left: ${reasons.join("; ")}`);
});
