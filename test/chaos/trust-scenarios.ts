import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { Engine } from "../../contracts/gen/llama_orch/v1/common.js";
import { RegistryServiceClient } from "../../contracts/gen/llama_orch/v1/registry.js";
import { SubmitRequest, WorkerServiceClient } from "../../contracts/gen/llama_orch/v1/worker.js";
import { keyMetadata } from "../support/grpc.js";
import { TestSystem } from "../support/system.js";
import { contiguous, endingOf, openStream, submit, type ChaosRow, type Scenario } from "./chaos-kit.js";

// Callers that should not get in, arriving in numbers while a real stream runs:
// each is refused with its typed status, and the stream never notices.

const KEY = "chaos-trust-key";
const ATTEMPTS = 100;

async function withStream(body: (sys: TestSystem) => Promise<Omit<ChaosRow, "held"> & { refusedAll: boolean }>): Promise<ChaosRow> {
  const sys = await TestSystem.start({ apiKey: KEY, workers: [{ replica: "a", slots: 1, tokensPerSecond: 50 }] });
  try {
    const s = await openStream(sys, KEY, await submit(sys, KEY, { max_tokens: 150 }));
    await s.waitFor(3, "token");
    const address = (await sys.replicas()).find((r) => r.replicaId === "a")?.address;
    const row = await body(sys);
    await s.done;
    const stillOurs = (await sys.replicas()).find((r) => r.replicaId === "a")?.address === address;
    const whole = contiguous(s.events) && s.events.at(-1)?.event === "end";
    return {
      scenario: row.scenario,
      held: row.refusedAll && whole && stillOurs,
      figures: `${row.figures}; the stream: ${endingOf(s.events)}, contiguous ${contiguous(s.events)}; replica a unchanged: ${stillOurs}`,
    };
  } finally {
    await sys.stop();
  }
}

function registerOnce(coreAddress: string, key: string): Promise<number | "accepted"> {
  const client = new RegistryServiceClient(coreAddress, credentials.createInsecure());
  const request = {
    address: "127.0.0.1:1",
    poolId: "default",
    replicaId: "a",
    engine: Engine.ENGINE_LLAMACPP,
    modelRef: "mock:tiny",
    slotsTotal: 64,
    servesAnyModel: true,
    instanceId: crypto.randomUUID(),
    heldTaskIds: [],
  };
  return new Promise<number | "accepted">((resolve) => {
    const call = client.register(request, keyMetadata(key));
    call.on("data", () => {
      call.cancel();
      resolve("accepted");
    });
    call.on("error", (e: ServiceError) => resolve(e.code));
  }).finally(() => client.close());
}

/** "100 ALREADY_EXISTS, 2 answered": how many calls ended each way. */
function tally(codes: (number | string)[]): string {
  const counts = new Map<string, number>();
  for (const c of codes) {
    const name = typeof c === "number" ? String(status[c]) : c;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return [...counts].map(([name, n]) => `${n} ${name}`).join(", ");
}

/** Impostors claim the live replica id: with a valid key (ALREADY_EXISTS) and with a made-up one (PERMISSION_DENIED, as a wrong key is). */
export const impostorRegistrations: Scenario = () =>
  withStream(async (sys) => {
    const withKey = await Promise.all(Array.from({ length: ATTEMPTS }, () => registerOnce(sys.coreAddress, KEY)));
    const madeUp = await Promise.all(Array.from({ length: ATTEMPTS }, () => registerOnce(sys.coreAddress, "not-a-key")));
    return {
      scenario: `${ATTEMPTS * 2} impostor registrations under a live replica id`,
      refusedAll: withKey.every((c) => c === status.ALREADY_EXISTS) && madeUp.every((c) => c === status.PERMISSION_DENIED),
      figures: `valid key: ${tally(withKey)}; made-up key: ${tally(madeUp)}`,
    };
  });

function submitOnce(address: string, key: string | undefined): Promise<number | "answered"> {
  const client = new WorkerServiceClient(address, credentials.createInsecure());
  const request = SubmitRequest.fromPartial({ taskId: crypto.randomUUID(), modelRef: "mock:tiny", prompt: "x", maxTokens: 10_000 });
  return new Promise<number | "answered">((resolve) => {
    const call = client.submit(request, keyMetadata(key));
    call.on("data", () => {
      call.cancel();
      resolve("answered");
    });
    call.on("error", (e: ServiceError) => resolve(e.code));
    call.on("end", () => resolve("answered"));
  }).finally(() => client.close());
}

/** Submits straight to the sidecar, bypassing core: UNAUTHENTICATED without a key, PERMISSION_DENIED with a made-up one. */
export const unauthenticatedWorkerCalls: Scenario = () =>
  withStream(async (sys) => {
    const address = sys.worker("a").address;
    const none = await Promise.all(Array.from({ length: ATTEMPTS }, () => submitOnce(address, undefined)));
    const madeUp = await Promise.all(Array.from({ length: ATTEMPTS }, () => submitOnce(address, "not-a-key")));
    const all = [...none, ...madeUp];
    return {
      scenario: `${ATTEMPTS * 2} Submit calls straight to a sidecar without a valid key`,
      refusedAll: none.every((c) => c === status.UNAUTHENTICATED) && madeUp.every((c) => c === status.PERMISSION_DENIED),
      figures: tally(all),
    };
  });
