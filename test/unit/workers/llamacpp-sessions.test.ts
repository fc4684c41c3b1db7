// Sessions on a llama.cpp server: completions pinned to the slot holding the
// session's KV cache, and eviction through POST /slots/{id}?action=erase.
import test, { type ExecutionContext } from "ava";
import { WorkerErrorKind as K } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { EvictionUnsupportedError } from "../../../workers/engine-adapter.js";
import { createLlamaCppAdapter, type LlamaCppAdapter, type LlamaCppTuning } from "../../../workers/llamacpp/llamacpp-adapter.js";
import { completionBody, erasedTokensOf, servedSlotOf } from "../../../workers/llamacpp/llamacpp-api.js";
import { startFakeLlamaCpp, type FakeLlamaCpp, type FakeLlamaCppOptions } from "../../fakes/llamacpp-fake.js";
import { collect, eventually, submitRequest, within, workerFailure } from "./helpers.js";

const FAST: LlamaCppTuning = { retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 }, probeTimeoutMs: 5_000, failureThreshold: 2 };
/** "tell me a story" is 4 prompt tokens to the fake; it streams 10 tokens by default. */
const CACHED_AFTER_ONE = 14;

async function ready(t: ExecutionContext, opts: FakeLlamaCppOptions = {}, tuning: LlamaCppTuning = {}) {
  const engine = await startFakeLlamaCpp({ totalSlots: 2, slotSavePath: true, ...opts });
  t.teardown(() => engine.close());
  const a = createLlamaCppAdapter({ baseUrl: engine.url, modelRef: "hf:tiny/llama", pollIntervalMs: 25 }, { ...FAST, ...tuning });
  t.teardown(() => a.stop());
  await within(a.start(), 3_000, "adapter ready");
  return { engine, a };
}

function pinnedSlots(engine: FakeLlamaCpp): (number | undefined)[] {
  return engine.generations().map((r) => (r.body as { id_slot?: number }).id_slot);
}

/** A completion of `sessionId` that hangs after one token until stopped; the engine's next completions run normally. */
async function hanging(engine: FakeLlamaCpp, a: LlamaCppAdapter, sessionId: string) {
  const before = engine.generations().length;
  engine.setBehaviour({ hangAfter: 1 });
  const controller = new AbortController();
  const done = collect(a, submitRequest({ sessionId }), controller.signal);
  if (!(await eventually(() => engine.generations().length > before))) throw new Error("the hanging completion never reached the engine");
  // The fake takes its behaviour when a request arrives.
  engine.setBehaviour({ hangAfter: undefined });
  return {
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

test("a session's next completion is pinned to the slot that served it; a sessionless one is not, and takes the slot over", async (t) => {
  const { engine, a } = await ready(t);
  await collect(a, submitRequest({ sessionId: "s-a" }));
  await collect(a, submitRequest({ sessionId: "s-a" }));
  await collect(a, submitRequest({ sessionId: "" }));
  await collect(a, submitRequest({ sessionId: "s-a" }));
  t.deepEqual(
    pinnedSlots(engine),
    [undefined, 0, undefined, undefined],
    "the sessionless completion ran on slot 0 and overwrote its cache",
  );
  t.false("id_slot" in completionBody("p", 1, undefined), "-1 is the default, so it is not sent");
});

test("a session's slot busy with one of ours, or a completion of ours on a slot not known yet: any slot, never a wait", async (t) => {
  const { engine, a } = await ready(t);
  await collect(a, submitRequest({ sessionId: "s-a" }));
  const first = await hanging(engine, a, "s-a");
  await collect(a, submitRequest({ sessionId: "s-a" }));
  await first.stop();
  t.deepEqual(pinnedSlots(engine), [undefined, 0, undefined], "slot 0 was busy: the third ran on slot 1");
  t.deepEqual(engine.generations().at(-1)?.finished, true);

  const other = await hanging(engine, a, "s-new");
  await collect(a, submitRequest({ sessionId: "s-a" }));
  await other.stop();
  t.is(pinnedSlots(engine)[4], undefined, "s-new's completion may be on s-a's slot until its final frame says");
});

test("evicting a session erases the slots holding its cache and answers whether there was one", async (t) => {
  const { engine, a } = await ready(t);
  await collect(a, submitRequest({ sessionId: "s-a" }));
  t.is(a.kvTokensOf("s-a"), CACHED_AFTER_ONE, "tokens_cached of its final frame");
  t.is(a.kvBytesOf("s-a", 512), CACHED_AFTER_ONE * 512);
  t.true(await a.evictSession("s-a"));
  t.deepEqual(
    engine.slotActions().map((r) => r.path),
    ["/slots/0"],
  );
  t.is(a.kvTokensOf("s-a"), undefined);
  t.false(await a.evictSession("s-a"), "nothing left to drop");
  t.false(await a.evictSession("never-seen"));
  t.false(await a.evictSession(""));
  t.is(engine.slotActions().length, 1, "nothing to erase sends nothing");
  await collect(a, submitRequest({ sessionId: "s-a" }));
  t.is(pinnedSlots(engine)[1], undefined, "an evicted session starts on any slot");
});

test("a session spread over two slots is erased from both", async (t) => {
  const { engine, a } = await ready(t);
  await collect(a, submitRequest({ sessionId: "s-a" }));
  const busy = await hanging(engine, a, "s-a");
  await collect(a, submitRequest({ sessionId: "s-a" }));
  await busy.stop();
  t.is(a.kvTokensOf("s-a"), CACHED_AFTER_ONE, "slot 1's completion; slot 0 holds the cancelled one's tokens, which no final frame counted");
  t.true(await a.evictSession("s-a"));
  t.deepEqual(
    engine
      .slotActions()
      .map((r) => r.path)
      .sort(),
    ["/slots/0", "/slots/1"],
  );
});

test("a server started without --slot-save-path refuses slot actions: eviction is unsupported, and says why, until the server restarts", async (t) => {
  const { engine, a } = await ready(t, { slotSavePath: false });
  await collect(a, submitRequest({ sessionId: "s-a" }));
  const refused = await t.throwsAsync(a.evictSession("s-a"), { instanceOf: EvictionUnsupportedError });
  t.regex(
    refused.message,
    /llama\.cpp refuses slot actions, so sessions cannot be evicted: POST \/slots\/0\?action=erase: HTTP 501: This server does not support slots action\. Start it with `--slot-save-path`/,
  );
  await t.throwsAsync(a.evictSession("never-seen"), { instanceOf: EvictionUnsupportedError }, "known now, for every session");
  t.is(engine.slotActions().length, 1, "not asked again");

  const port = engine.port;
  await engine.close();
  t.true(await eventually(() => !a.health().ready, 5_000), "the engine went down");
  const restarted = await startFakeLlamaCpp({ port, totalSlots: 2, slotSavePath: true });
  t.teardown(() => restarted.close());
  t.true(await eventually(() => a.health().ready, 5_000));
  await collect(a, submitRequest({ sessionId: "s-a" }));
  t.true(await a.evictSession("s-a"), "a restarted server may allow what the old one refused");
});

test("a slot llama.cpp is still busy with is erased only once it is idle: an erase that waits too long fails with TIMEOUT", async (t) => {
  const { engine, a } = await ready(t, {}, { evictTimeoutMs: 200 });
  await collect(a, submitRequest({ sessionId: "s-a" }));
  const busy = await hanging(engine, a, "s-a");
  const err = workerFailure(t, await a.evictSession("s-a").catch((e: unknown) => e));
  t.is(err.kind, K.WORKER_ERROR_KIND_TIMEOUT);
  t.is(err.message, "POST /slots/0?action=erase: no answer within 200 ms");
  await busy.stop();
});

test("slots the engine no longer has are forgotten: another slot count, or an engine that went down", async (t) => {
  const { engine, a } = await ready(t);
  await collect(a, submitRequest({ sessionId: "s-a" }));
  engine.setBehaviour({ totalSlots: 4 });
  t.true(await eventually(() => a.slotsTotal() === 4));
  t.false(await a.evictSession("s-a"));
  await collect(a, submitRequest({ sessionId: "s-a" }));
  t.is(pinnedSlots(engine)[1], undefined);
});

test("the fake, like llama-server, defers a completion pinned to a busy slot until it is idle", async (t) => {
  const engine = await startFakeLlamaCpp({ totalSlots: 2, hangAfter: 1 });
  t.teardown(() => engine.close());
  const post = (signal: AbortSignal) =>
    fetch(`${engine.url}/completion`, {
      method: "POST",
      body: JSON.stringify({ prompt: "x", n_predict: 3, stream: true, id_slot: 0 }),
      signal,
    });
  const holder = new AbortController();
  const first = await post(holder.signal);
  t.is(first.status, 200);
  engine.setBehaviour({ hangAfter: undefined });
  let answered = false;
  const second = post(new AbortController().signal).then((r) => {
    answered = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 200));
  t.false(answered, "slot 0 is processing");
  holder.abort();
  const text = await (await second).text();
  t.regex(text, /"id_slot":0,"stop":true/);
});

test("protocol mapping: the final frame's slot and cache, and erase's n_erased", (t) => {
  t.deepEqual(servedSlotOf({ id_slot: 1, tokens_cached: 20, stop: true }), { slot: 1, tokens: 20 });
  t.is(servedSlotOf({ id_slot: -1 }), undefined);
  t.deepEqual(servedSlotOf({ id_slot: 0 }), { slot: 0, tokens: undefined });
  t.is(erasedTokensOf({ id_slot: 0, n_erased: 1745 }), 1745);
  t.is(erasedTokensOf({ id_slot: 0 }), undefined);
  t.deepEqual(completionBody("p", 2, 7, 3), { prompt: "p", n_predict: 2, stream: true, cache_prompt: true, seed: 7, id_slot: 3 });
});
