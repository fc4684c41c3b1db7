import test from "ava";
import { ProvisionError } from "../../../../workers/provision/provision-error.js";
import { SingleFlight } from "../../../../workers/provision/single-flight.js";

/** Work that runs until released or aborted, counting how often it started. */
function gatedWork(): { starts: number; release: (value: string) => void; work: (signal: AbortSignal) => Promise<string> } {
  const state = { starts: 0, release: (_value: string) => {} };
  const work = (signal: AbortSignal): Promise<string> => {
    state.starts++;
    return new Promise((resolve, reject) => {
      state.release = resolve;
      signal.addEventListener("abort", () => reject(new Error("aborted work")), { once: true });
    });
  };
  return Object.assign(state, { work });
}

test("callers of one key share one run of the work; another key runs its own", async (t) => {
  const flights = new SingleFlight<string>();
  const g = gatedWork();
  const a = flights.join("k", g.work, {});
  const b = flights.join("k", g.work, {});
  const c = flights.join("other", () => Promise.resolve("other"), {});
  g.release("shared");
  t.deepEqual(await Promise.all([a, b, c]), ["shared", "shared", "other"]);
  t.is(g.starts, 1);
  t.is(flights.size, 0);
});

test("the work stops only when every caller gave up, and the next caller starts afresh", async (t) => {
  const flights = new SingleFlight<string>();
  const g = gatedWork();
  const one = new AbortController();
  const two = new AbortController();
  const a = flights.join("k", g.work, { signal: one.signal });
  const b = flights.join("k", g.work, { signal: two.signal });
  one.abort();
  await t.throwsAsync(a, { instanceOf: ProvisionError, message: /cancelled/ });
  t.is(flights.size, 1, "still running for the second caller");
  two.abort();
  await t.throwsAsync(b, { instanceOf: ProvisionError });
  t.is(flights.size, 0);
  const c = flights.join("k", g.work, {});
  t.is(g.starts, 2);
  g.release("fresh");
  t.is(await c, "fresh");
});

test("a caller without a signal keeps the work going for everyone", async (t) => {
  const flights = new SingleFlight<string>();
  const g = gatedWork();
  const quitter = new AbortController();
  const a = flights.join("k", g.work, { signal: quitter.signal });
  const b = flights.join("k", g.work, {});
  quitter.abort();
  await t.throwsAsync(a);
  g.release("done");
  t.is(await b, "done");
  t.is(g.starts, 1);
});

test("a caller whose signal has already aborted is refused at once and starts nothing", async (t) => {
  const flights = new SingleFlight<string>();
  const g = gatedWork();
  await t.throwsAsync(flights.join("k", g.work, { signal: AbortSignal.abort() }), { instanceOf: ProvisionError });
  t.is(g.starts, 0);
  t.is(flights.size, 0);
});
