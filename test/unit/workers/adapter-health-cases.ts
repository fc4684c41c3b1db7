// The health and metadata half of the adapter conformance table
// (adapter-conformance.ts): restart on the same port, loading, stop, info
// and slots, an engine that is not there, and the API key.
import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { StopReason } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K, type WorkerHealth } from "../../../contracts/gen/llama_orch/v1/worker.js";
import type { AnySpec } from "./adapter-conformance.js";
import { adapterOf, fakeOf, matches, setUp, STOPPED } from "./adapter-harness.js";
import { collect, eventually, submitRequest, within, workerFailure } from "./helpers.js";

/** What health says before the first probe has answered. */
const UNPROBED = ["not probed yet", "not started"];

/** Ready values of `seen` with repeats folded: [true, false, true] is up, down, up. */
function transitions(seen: WorkerHealth[]): boolean[] {
  return seen.map((h) => h.ready).filter((ready, i, all) => i === 0 || all[i - 1] !== ready);
}

const CASES = [
  followsARestart,
  waitsWhileLoading,
  stopsOnce,
  failsWithNothingListening,
  mapsInfo,
  honoursConfiguredSlots,
  neverLeaksTheKey,
];

export function registerHealthCases(spec: AnySpec): void {
  for (const register of CASES) register(spec);
}

function followsARestart(spec: AnySpec): void {
  test("engine restart: down while it is away, Ready again on the same port with what the new engine reports", async (t) => {
    const c = spec.restart;
    const first = await fakeOf(t, spec, c.before);
    const adapter = adapterOf(t, spec, first.url);
    const seen: WorkerHealth[] = [];
    adapter.onHealthChange((h) => seen.push(h));
    await within(adapter.start(), 3_000, "adapter ready");
    if (c.infoBefore) t.like(adapter.info(), c.infoBefore);

    await first.close();
    t.true(await eventually(() => !adapter.health().ready && !adapter.health().live, 3_000), "down once the engine is gone");
    t.regex(adapter.health().lastError, c.lastError);
    c.whileDown?.(t, adapter);
    t.is(workerFailure(t, (await collect(adapter, submitRequest())).error).kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);

    const second = await fakeOf(t, spec, { ...c.after, port: first.port });
    t.true(await eventually(() => adapter.health().ready, 3_000), "Ready again once it is back");
    if (c.info) t.like(adapter.info(), c.info, "read again: a restart may be an upgrade");
    t.deepEqual(transitions(seen), [true, false, true]);
    const out = await collect(adapter, submitRequest());
    t.deepEqual(out.texts, c.tokens);
    t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS);
    t.is(second.generations().length, 1, "the restarted engine served it");
  });
}

function waitsWhileLoading(spec: AnySpec): void {
  test("a loading engine is not Ready and says why; start() resolves once it is Ready", async (t) => {
    const c = spec.loading;
    const { fake, adapter } = await setUp(t, spec, c.fake, {}, false);
    const seen: WorkerHealth[] = [];
    adapter.onHealthChange((h) => seen.push(h));
    let started = false;
    const starting = adapter.start().then(() => (started = true));
    t.true(await eventually(() => !UNPROBED.includes(adapter.health().lastError)), "the first probe answered");
    t.false(adapter.health().ready);
    t.is(adapter.health().live, c.live);
    matches(t, adapter.health().lastError, c.lastError);
    await sleep(50);
    t.false(started, "start() waits for Ready");
    fake.setBehaviour(c.ready);
    await within(starting, 3_000, "start() resolves at Ready");
    t.deepEqual(adapter.health(), { live: true, ready: true, lastError: "" });
    t.true(seen.some((h) => !h.ready) && seen.at(-1)?.ready === true);
  });
}

function stopsOnce(spec: AnySpec): void {
  test("stop() reports stopped health once and releases a start() waiting for Ready, before and after the first probe", async (t) => {
    const fake = await fakeOf(t, spec, spec.loading.fake);
    for (const afterFirstProbe of [false, true]) {
      const adapter = adapterOf(t, spec, fake.url);
      const seen: WorkerHealth[] = [];
      adapter.onHealthChange((h) => seen.push(h));
      const starting = adapter.start();
      if (afterFirstProbe) t.true(await eventually(() => seen.length > 0), "the first probe answered");
      await adapter.stop();
      await within(starting, 1_000, "start() resolves on stop");
      t.deepEqual(adapter.health(), STOPPED);
      t.deepEqual(seen.at(-1), STOPPED);
      await adapter.stop();
      t.is(seen.filter((h) => h.lastError === STOPPED.lastError).length, 1, "a second stop() changes nothing");
    }
  });
}

function failsWithNothingListening(spec: AnySpec): void {
  test("nothing listening: generations fail ENGINE_UNAVAILABLE (retriable) without the key, and health is down", async (t) => {
    const fake = await spec.startFake();
    await fake.close();
    const adapter = adapterOf(t, spec, fake.url, { apiKey: spec.apiKey.key });
    void adapter.start();
    const failure = workerFailure(t, (await collect(adapter, submitRequest())).error);
    t.is(failure.kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
    t.true(failure.retriable);
    t.false(failure.message.includes(spec.apiKey.key));
    t.true(await eventually(() => !UNPROBED.includes(adapter.health().lastError)));
    t.like(adapter.health(), { live: false, ready: false });
  });
}

function mapsInfo(spec: AnySpec): void {
  test("info and slots: what the engine reports, mapped, and what is known before it answered", async (t) => {
    const c = spec.info;
    for (const [i, mapping] of c.mappings.entries()) {
      const fake = await fakeOf(t, spec, mapping.fake);
      const adapter = adapterOf(t, spec, fake.url);
      if (i === 0 && c.before) {
        t.like(adapter.info(), c.before.info, "before the engine answered");
        t.is(adapter.slotsTotal(), c.before.slots, "slots before the engine answered: the sidecar sizes its pool before start()");
        t.false(adapter.health().ready);
      }
      await within(adapter.start(), 3_000, "adapter ready");
      t.deepEqual(adapter.info(), mapping.info);
      t.is(adapter.slotsTotal(), mapping.slots);
      if (i === 0) await c.check?.(t, adapter, fake);
    }
  });
}

function honoursConfiguredSlots(spec: AnySpec): void {
  test("a configured slot count wins over what the engine reports, before and after start()", async (t) => {
    for (const row of spec.info.configuredSlots) {
      const fake = await fakeOf(t, spec, row.fake);
      const adapter = adapterOf(t, spec, fake.url, { slots: row.slots });
      t.is(adapter.slotsTotal(), row.expect, `slots ${row.slots}, before start()`);
      await within(adapter.start(), 3_000, "adapter ready");
      t.is(adapter.slotsTotal(), row.expect, `slots ${row.slots}, once Ready`);
    }
  });
}

function neverLeaksTheKey(spec: AnySpec): void {
  test("the API key goes out as a bearer token on every request and never appears in an error or in health", async (t) => {
    const c = spec.apiKey;
    const secrets = c.fragment ? [c.key, c.fragment] : [c.key];
    const messages: string[] = [];
    const { fake, adapter } = await setUp(t, spec, c.fake, { apiKey: c.key });
    const ok = await collect(adapter, submitRequest(c.request));
    t.is(ok.error, undefined);
    t.is(ok.result?.stopReason, StopReason.STOP_REASON_EOS);
    t.true(fake.generations().length === 1 && fake.requests.length > 1, "probes and a generation");
    for (const r of fake.requests) t.is(r.headers.authorization, `Bearer ${c.key}`, `${r.method} ${r.path}`);

    for (const echo of c.echoes) {
      fake.setBehaviour(echo.behaviour);
      const failure = workerFailure(t, (await collect(adapter, submitRequest(echo.request))).error);
      t.regex(failure.message, echo.message ?? /\[redacted\]/);
      messages.push(failure.message);
    }
    await fake.close();
    messages.push(workerFailure(t, (await collect(adapter, submitRequest())).error).message);
    t.true(await eventually(() => !adapter.health().ready, 3_000));
    messages.push(adapter.health().lastError);

    if (c.wrongKey) {
      const other = await fakeOf(t, spec, c.wrongKey.fake);
      const refusing = adapterOf(t, spec, other.url, { apiKey: c.key });
      void refusing.start();
      if (c.wrongKey.health) {
        const health = c.wrongKey.health;
        t.true(await eventually(() => health.test(refusing.health().lastError), 3_000), "the refusal shows in health");
        t.false(refusing.health().ready);
        messages.push(refusing.health().lastError);
      }
      const refused = workerFailure(t, (await collect(refusing, submitRequest())).error);
      t.is(refused.kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, "a refused key is the deployment's fault, not the task's");
      t.regex(refused.message, c.wrongKey.message);
      messages.push(refused.message);
    }
    const wrongKeyMessages = c.wrongKey ? (c.wrongKey.health ? 2 : 1) : 0;
    t.is(messages.length, c.echoes.length + 2 + wrongKeyMessages, "every message was looked at");
    for (const message of messages) for (const secret of secrets) t.false(message.includes(secret), message);
  });
}
