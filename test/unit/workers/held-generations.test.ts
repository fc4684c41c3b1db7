import test from "ava";
import type { WorkerServiceClient, SubmitResponse } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { SubmitRequest, WorkerErrorKind } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { MockEngine } from "../../../workers/mock/mock-engine.js";
import { collect, drain, eventually, logCapture, props, startTestWorker, submitRequest } from "./helpers.js";

// A detachable Submit (core's) whose call breaks leaves its generation
// running, held for a resumed Submit, the way a restarted core picks up
// what the sidecar kept for it.

/** Opens a detachable Submit, reads until `tokens` tokens came, then breaks the call as a dying core would. */
async function breakAfter(client: WorkerServiceClient, request: SubmitRequest, tokens: number): Promise<string[]> {
  const call = client.submit(request);
  const texts: string[] = [];
  await new Promise<void>((resolve, reject) => {
    call.on("data", (m: SubmitResponse) => {
      if (m.event?.$case === "tokens") texts.push(...m.event.tokens.texts);
      if (texts.length >= tokens) resolve();
    });
    call.on("error", () => {});
    call.on("end", () => reject(new Error(`ended after ${texts.length} tokens`)));
  });
  call.cancel();
  return texts;
}

const resume = (client: WorkerServiceClient, taskId: string, tokensReceived: number, resultsReceived = 0) =>
  drain(client.submit(SubmitRequest.fromPartial({ taskId, detachable: true, resume: { tokensReceived, resultsReceived } })));

function tokenBatches(events: SubmitResponse[]): Array<[number, string[]]> {
  return events.flatMap((m) =>
    m.event?.$case === "tokens" ? [[m.event.tokens.firstIndex, m.event.tokens.texts] as [number, string[]]] : [],
  );
}

const slotFree = (client: WorkerServiceClient) => eventually(async () => (await props(client)).slotsFree === 1, 5_000);

test("a detachable generation whose call broke runs on, and a resumed Submit carries on after the caller's last token to the end", async (t) => {
  const { client } = await startTestWorker(t, { mock: { slots: 1, tokensPerSecond: 200 } });
  // Two seconds of tokens: the call breaks long before the end, even on a loaded machine.
  const request = submitRequest({ prompt: "carry on please", seed: 3, maxTokens: 400, detachable: true });
  const before = await breakAfter(client, request, 3);
  const after = await resume(client, request.taskId, before.length);
  t.is(after[0]!.event?.$case, "started", "a resumed stream starts with started, as Submit's does");
  const batches = tokenBatches(after);
  let next = before.length;
  for (const [first, texts] of batches) {
    t.is(first, next, "token indices carry on without a gap or a repeat");
    next += texts.length;
  }
  t.is(next, 400);
  const end = after.at(-1)!.event;
  t.is(end?.$case, "end");
  if (end?.$case === "end") t.is(end.end.tokensOut, 400);
  // The same generation, not a new one: its text is exactly what one unbroken run gives.
  const direct = new MockEngine();
  await direct.start();
  const expected = (await collect(direct, request)).texts.join("");
  t.is([...before, ...batches.flatMap(([, texts]) => texts)].join(""), expected);
});

test("a generation that ended while held is handed over whole, once", async (t) => {
  const { client } = await startTestWorker(t, { mock: { slots: 1, tokensPerSecond: 400 } });
  // Long enough (half a second) that the call breaks well before the end.
  const request = submitRequest({ maxTokens: 200, detachable: true });
  await breakAfter(client, request, 1);
  t.true(await slotFree(client), "it ran to its end and gave its slot back");
  const replay = await resume(client, request.taskId, 0);
  t.deepEqual(
    replay.map((m) => m.event?.$case),
    ["started", "tokens", "end"],
  );
  t.deepEqual(tokenBatches(replay)[0]![0], 0);
  t.is(tokenBatches(replay)[0]![1].length, 200);
  const again = await resume(client, request.taskId, 0);
  const last = again.at(-1)!.event;
  t.is(last?.$case, "error");
  if (last?.$case === "error") t.is(last.error.kind, WorkerErrorKind.WORKER_ERROR_KIND_RESET);
});

test("past --hold-max-events the held generation stops with CORE_LOST, and the resume says so after the tokens it has", async (t) => {
  const { client } = await startTestWorker(t, { mock: { slots: 1, tokensPerSecond: 400 }, holdMaxEvents: 5 });
  const request = submitRequest({ maxTokens: 5_000, detachable: true });
  const before = await breakAfter(client, request, 1);
  t.true(await slotFree(client), "the overflowing generation was stopped and its slot freed");
  const after = await resume(client, request.taskId, before.length);
  const held = tokenBatches(after).flatMap(([, texts]) => texts).length;
  // Tokens made before the sidecar saw the call break went to the dead call and count for the record, not the hold.
  t.true(held >= 5 && held < 5_000, `${held} tokens were held`);
  const last = after.at(-1)!.event;
  t.is(last?.$case, "error");
  if (last?.$case === "error") t.like(last.error, { kind: WorkerErrorKind.WORKER_ERROR_KIND_CORE_LOST, retriable: true });
});

test("a held generation nobody resumes within --hold-ms is given up", async (t) => {
  const { client } = await startTestWorker(t, { mock: { slots: 1, tokensPerSecond: 100 }, holdMs: 150 });
  const request = submitRequest({ maxTokens: 5_000, detachable: true });
  await breakAfter(client, request, 1);
  t.true(await slotFree(client));
  const late = await resume(client, request.taskId, 0);
  const last = late.at(-1)!.event;
  t.is(last?.$case, "error");
  if (last?.$case === "error") t.is(last.error.kind, WorkerErrorKind.WORKER_ERROR_KIND_RESET, "nothing is held any more");
});

test("the Cancel RPC stops a held generation and forgets it", async (t) => {
  const { client } = await startTestWorker(t, { mock: { slots: 1, tokensPerSecond: 100 } });
  const request = submitRequest({ maxTokens: 5_000, detachable: true });
  await breakAfter(client, request, 1);
  const found = await new Promise<boolean>((resolve, reject) =>
    client.cancel({ taskId: request.taskId }, (err, res) => (err ? reject(err) : resolve(res.found))),
  );
  t.true(found);
  t.true(await slotFree(client));
  const last = (await resume(client, request.taskId, 0)).at(-1)!.event;
  t.is(last?.$case === "error" && last.error.kind, WorkerErrorKind.WORKER_ERROR_KIND_RESET);
});

test("without detachable, a broken call still stops its generation at once", async (t) => {
  const { client } = await startTestWorker(t, { mock: { slots: 1, tokensPerSecond: 100 } });
  const request = submitRequest({ maxTokens: 5_000 });
  await breakAfter(client, request, 1);
  t.true(await slotFree(client));
  const last = (await resume(client, request.taskId, 0)).at(-1)!.event;
  t.is(last?.$case === "error" && last.error.kind, WorkerErrorKind.WORKER_ERROR_KIND_RESET, "nothing was held");
});

test("a generation core cancels by name first is not held when its call then ends", async (t) => {
  const { logger, lines } = logCapture();
  const { client } = await startTestWorker(t, { mock: { slots: 1, tokensPerSecond: 100 } }, logger);
  const request = submitRequest({ maxTokens: 5_000, detachable: true });
  const call = client.submit(request);
  call.on("error", () => {});
  await new Promise<void>((resolve) => call.once("data", () => resolve()));
  await new Promise<void>((resolve, reject) => client.cancel({ taskId: request.taskId }, (err) => (err ? reject(err) : resolve())));
  call.cancel();
  t.true(await slotFree(client));
  t.false(
    lines.some((l) => l.event === "generation_held"),
    "what core stopped is not kept for it",
  );
});
