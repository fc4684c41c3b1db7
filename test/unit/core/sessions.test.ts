import test, { type ExecutionContext } from "ava";
import fc from "fast-check";
import { ErrorCode } from "../../../contracts/gen/llama_orch/v1/common.js";
import { OrchError } from "../../../contracts/runtime/metadata.js";
import { budgetHeaders, DEFAULT_SESSION_OPTIONS, SessionStore, type SessionOptions } from "../../../core/sessions/session-store.js";

const TTL = 10 * 60_000;

function makeStore(options: Partial<SessionOptions> = {}) {
  const clock = { now: 1_000 };
  const store = new SessionStore(options, () => clock.now);
  return { store, clock, advance: (ms: number) => void (clock.now += ms) };
}

function refusal(t: ExecutionContext, fn: () => unknown) {
  const err = t.throws(fn, { instanceOf: OrchError });
  t.is(err.detail.code, ErrorCode.ERROR_CODE_ADMISSION_REJECT);
  t.false(err.detail.retriable);
  return err.detail;
}

const usage = (tokensIn: number, tokensOut: number, decodeTimeMs = 0) => ({ tokensIn, tokensOut, decodeTimeMs });

test("defaults: 10 minute TTL, 8 turns, unlimited budgets, no cost", (t) => {
  t.is(DEFAULT_SESSION_OPTIONS.ttlMs, TTL);
  t.is(DEFAULT_SESSION_OPTIONS.maxTurns, 8);
  t.deepEqual(DEFAULT_SESSION_OPTIONS.defaultBudgets, {});
  t.is(DEFAULT_SESSION_OPTIONS.costPerThousandTokens, 0);
});

test("the first task creates the session and counts its turn", (t) => {
  const { store } = makeStore();
  t.is(store.get("s1"), undefined);
  const snap = store.admitTurn("s1");
  t.deepEqual(snap, { id: "s1", ttlMsRemaining: TTL, turns: 1, kvBytes: 0, kvWarmth: false, budgets: {} });
  t.deepEqual(store.get("s1"), snap);
  t.is(store.admitTurn("s1").turns, 2);
  t.is(store.size(), 1);
});

test("the 9th turn is refused with session-turns, and changes nothing", (t) => {
  const { store } = makeStore();
  for (let i = 1; i <= 8; i++) t.is(store.admitTurn("s1").turns, i);
  const detail = refusal(t, () => store.admitTurn("s1"));
  t.is(detail.policyLabel, "session-turns");
  t.is(detail.message, "session s1 has used all 8 turns; start a new session");
  t.is(store.get("s1")?.turns, 8);
});

test("maxTurns is configurable and named in the message", (t) => {
  const { store } = makeStore({ maxTurns: 2 });
  store.admitTurn("s1");
  store.admitTurn("s1");
  t.regex(refusal(t, () => store.admitTurn("s1")).message, /all 2 turns/);
});

test("releaseTurn gives the turn back", (t) => {
  const { store } = makeStore({ maxTurns: 2 });
  store.admitTurn("s1");
  store.admitTurn("s1");
  store.releaseTurn("s1"); // e.g. the queue was full
  t.is(store.get("s1")?.turns, 1);
  t.is(store.admitTurn("s1").turns, 2);
});

test("a session whose only turn was released is forgotten; unknown ids are ignored", (t) => {
  const { store } = makeStore();
  store.admitTurn("s1");
  store.releaseTurn("s1");
  t.is(store.get("s1"), undefined);
  t.is(store.size(), 0);
  t.notThrows(() => store.releaseTurn("nope"));
});

test("an idle session expires: get is undefined and the id starts a fresh session", (t) => {
  const { store, advance } = makeStore({ defaultBudgets: { tokens: 100 } });
  store.admitTurn("s1");
  store.admitTurn("s1");
  store.recordUsage("s1", { ...usage(30, 30), replicaId: "r1", kvBytes: 4096 });
  advance(TTL - 1);
  t.is(store.get("s1")?.ttlMsRemaining, 1);
  advance(1);
  t.is(store.get("s1"), undefined);
  t.deepEqual(store.admitTurn("s1"), {
    id: "s1",
    ttlMsRemaining: TTL,
    turns: 1,
    kvBytes: 0,
    kvWarmth: false,
    budgets: { tokens: 100 },
  });
});

test("admitted tasks and finished tasks refresh the idle TTL", (t) => {
  const { store, advance } = makeStore({ ttlMs: 1_000 });
  store.admitTurn("s1");
  advance(900);
  t.is(store.admitTurn("s1").ttlMsRemaining, 1_000);
  advance(900);
  store.recordUsage("s1", usage(1, 1));
  advance(900);
  t.is(store.get("s1")?.ttlMsRemaining, 100);
  t.is(store.get("s1")?.turns, 2);
});

test("a refused task does not refresh the TTL", (t) => {
  const { store, advance } = makeStore({ ttlMs: 1_000, maxTurns: 1 });
  store.admitTurn("s1");
  advance(600);
  refusal(t, () => store.admitTurn("s1"));
  t.is(store.get("s1")?.ttlMsRemaining, 400);
});

test("token budget: charged tokens in+out, refused once exhausted, message says by how much", (t) => {
  const { store } = makeStore({ defaultBudgets: { tokens: 100 } });
  t.deepEqual(store.admitTurn("s1").budgets, { tokens: 100 });
  store.recordUsage("s1", usage(40, 50));
  t.deepEqual(store.admitTurn("s1").budgets, { tokens: 10 });
  store.recordUsage("s1", usage(5, 20));
  t.deepEqual(store.get("s1")?.budgets, { tokens: -15 });
  const detail = refusal(t, () => store.admitTurn("s1"));
  t.is(detail.policyLabel, "session-budget");
  t.is(detail.message, "session s1 has exhausted its token budget (used 115 of 100 tokens, 15 over); start a new session");
  t.is(store.get("s1")?.turns, 2);
});

test("a budget at exactly zero is exhausted", (t) => {
  const { store } = makeStore({ defaultBudgets: { tokens: 10 } });
  store.admitTurn("s1");
  store.recordUsage("s1", usage(4, 6));
  t.regex(refusal(t, () => store.admitTurn("s1")).message, /token budget \(used 10 of 10 tokens, 0 over\)/);
});

test("time budget: charged decode time in whole ms", (t) => {
  const { store } = makeStore({ defaultBudgets: { timeMs: 1_000 } });
  store.admitTurn("s1");
  store.recordUsage("s1", usage(1, 1, 999.2));
  t.deepEqual(store.get("s1")?.budgets, { timeMs: 0 });
  const detail = refusal(t, () => store.admitTurn("s1"));
  t.is(detail.policyLabel, "session-budget");
  t.is(detail.message, "session s1 has exhausted its time budget (used 1000 of 1000 ms, 0 over); start a new session");
});

test("cost budget: tokens priced per thousand, rounded to 6 decimals", (t) => {
  const { store } = makeStore({ defaultBudgets: { cost: 0.3 }, costPerThousandTokens: 0.1 });
  store.admitTurn("s1");
  store.recordUsage("s1", usage(1_000, 1_000)); // 0.2
  t.deepEqual(store.admitTurn("s1").budgets, { cost: 0.1 });
  store.recordUsage("s1", usage(700, 1_000)); // 0.17 -> 0.37 in all
  t.deepEqual(store.get("s1")?.budgets, { cost: -0.07 });
  const detail = refusal(t, () => store.admitTurn("s1"));
  t.is(detail.policyLabel, "session-budget");
  t.is(detail.message, "session s1 has exhausted its cost budget (used 0.37 of 0.3 cost units, 0.07 over); start a new session");
});

test("every exhausted budget is named", (t) => {
  const { store } = makeStore({ defaultBudgets: { tokens: 10, timeMs: 5, cost: 100 } });
  store.admitTurn("s1");
  store.recordUsage("s1", usage(10, 2, 8));
  t.is(
    refusal(t, () => store.admitTurn("s1")).message,
    "session s1 has exhausted its token budget (used 12 of 10 tokens, 2 over) and its time budget (used 8 of 5 ms, 3 over); start a new session",
  );
});

test("per-session budgets override the defaults field by field", (t) => {
  const { store } = makeStore({
    defaultBudgets: { tokens: 100, timeMs: 5_000 },
    perSessionBudgets: { vip: { tokens: 1_000, cost: 2 } },
  });
  t.deepEqual(store.admitTurn("vip").budgets, { tokens: 1_000, timeMs: 5_000, cost: 2 });
  t.deepEqual(store.admitTurn("other").budgets, { tokens: 100, timeMs: 5_000 });
  t.deepEqual(store.admitTurn("constructor").budgets, { tokens: 100, timeMs: 5_000 });
});

test("a zero budget refuses even the first task, and leaves no session behind", (t) => {
  const { store } = makeStore({ perSessionBudgets: { s1: { tokens: 0 } } });
  t.is(refusal(t, () => store.admitTurn("s1")).policyLabel, "session-budget");
  t.is(store.size(), 0);
});

test("snapshots report negative remaining; headers clamp at 0", (t) => {
  const { store } = makeStore({ defaultBudgets: { tokens: 10, timeMs: 100, cost: 0.001 }, costPerThousandTokens: 0.5 });
  store.admitTurn("s1");
  store.recordUsage("s1", usage(20, 0, 250));
  const budgets = store.get("s1")!.budgets;
  t.deepEqual(budgets, { tokens: -10, timeMs: -150, cost: -0.009 });
  t.deepEqual(budgetHeaders(budgets), {
    "X-Budget-Tokens-Remaining": "0",
    "X-Budget-Time-Remaining-Ms": "0",
    "X-Budget-Cost-Remaining": "0",
  });
  t.deepEqual(budgetHeaders({ tokens: 9200, timeMs: 45_000, cost: 0.75 }), {
    "X-Budget-Tokens-Remaining": "9200",
    "X-Budget-Time-Remaining-Ms": "45000",
    "X-Budget-Cost-Remaining": "0.75",
  });
});

test("unlimited budgets produce no headers", (t) => {
  const { store } = makeStore({ defaultBudgets: { timeMs: 10 } });
  t.deepEqual(budgetHeaders(makeStore().store.admitTurn("s1").budgets), {});
  t.deepEqual(Object.keys(budgetHeaders(store.admitTurn("s1").budgets)), ["X-Budget-Time-Remaining-Ms"]);
});

test("recordUsage marks where the KV cache is warm", (t) => {
  const { store } = makeStore();
  store.admitTurn("s1");
  store.recordUsage("s1", usage(3, 0)); // never ran on a replica (e.g. canceled in queue)
  t.like(store.get("s1"), { kvWarmth: false, kvBytes: 0, lastReplicaId: undefined });
  store.recordUsage("s1", { ...usage(3, 4), replicaId: "r1", kvBytes: 8192 });
  t.like(store.get("s1"), { kvWarmth: true, kvBytes: 8192, lastReplicaId: "r1" });
  store.recordUsage("s1", { ...usage(3, 4), replicaId: "r2" });
  t.like(store.get("s1"), { kvWarmth: true, kvBytes: 0, lastReplicaId: "r2" });
});

test("usage for a missing session is dropped, not resurrected; bad usage throws", (t) => {
  const { store } = makeStore();
  store.recordUsage("gone", usage(1, 1));
  t.is(store.size(), 0);
  store.admitTurn("s1");
  t.throws(() => store.recordUsage("s1", usage(-1, 0)), { instanceOf: RangeError });
  t.throws(() => store.recordUsage("s1", usage(0, Number.NaN)), { instanceOf: RangeError });
});

test("delete ends the session and reports where its KV cache was", (t) => {
  const { store } = makeStore();
  store.admitTurn("s1");
  store.recordUsage("s1", { ...usage(1, 1), replicaId: "r1", kvBytes: 10 });
  store.admitTurn("s2");
  t.deepEqual(store.delete("s1"), { existed: true, lastReplicaId: "r1" });
  t.deepEqual(store.delete("s2"), { existed: true });
  t.deepEqual(store.delete("s1"), { existed: false });
  t.is(store.get("s1"), undefined);
  t.is(store.admitTurn("s1").turns, 1);
});

test("delete of an expired session reports it did not exist", (t) => {
  const { store, advance } = makeStore();
  store.admitTurn("s1");
  advance(TTL);
  t.deepEqual(store.delete("s1"), { existed: false });
});

test("sweep drops exactly the expired sessions and counts them", (t) => {
  const { store, advance } = makeStore({ ttlMs: 1_000 });
  store.admitTurn("a");
  store.admitTurn("b");
  advance(500);
  store.admitTurn("c");
  t.is(store.sweep(), 0);
  advance(500);
  t.is(store.size(), 3);
  t.is(store.sweep(), 2);
  t.is(store.size(), 1);
  t.truthy(store.get("c"));
  advance(500);
  t.is(store.sweep(), 1);
  t.is(store.size(), 0);
});

test("bad options are refused at construction", (t) => {
  t.throws(() => new SessionStore({ ttlMs: 0 }), { instanceOf: RangeError });
  t.throws(() => new SessionStore({ maxTurns: 1.5 }), { instanceOf: RangeError });
  t.throws(() => new SessionStore({ costPerThousandTokens: -1 }), { instanceOf: RangeError });
  t.throws(() => new SessionStore({ defaultBudgets: { tokens: -1 } }), { instanceOf: RangeError });
  t.throws(() => new SessionStore({ perSessionBudgets: { s: { cost: Number.NaN } } }), { instanceOf: RangeError });
});

test("property: turns never exceed maxTurns and sweep leaves no expired session", (t) => {
  type Op = { kind: "admit" | "release" | "advance" | "sweep"; id: number; ms: number };
  const op = fc.record({
    kind: fc.constantFrom<Op["kind"]>("admit", "release", "advance", "sweep"),
    id: fc.integer({ min: 0, max: 3 }),
    ms: fc.integer({ min: 0, max: 400 }),
  });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const { store, advance } = makeStore({ ttlMs: 1_000, maxTurns: 3 });
      for (const o of ops) {
        const id = `s${o.id}`;
        if (o.kind === "admit") {
          try {
            store.admitTurn(id);
          } catch (err) {
            if (!(err instanceof OrchError) || err.detail.policyLabel !== "session-turns") throw err;
          }
        } else if (o.kind === "release") store.releaseTurn(id);
        else if (o.kind === "advance") advance(o.ms);
        else store.sweep();
        const snap = store.get(id);
        if (snap && (snap.turns > 3 || snap.turns < 0 || snap.ttlMsRemaining <= 0)) return false;
      }
      store.sweep();
      const held = store.size();
      const live = [0, 1, 2, 3].filter((i) => store.get(`s${i}`) !== undefined).length;
      if (held !== live) return false;
      advance(1_000);
      return store.sweep() === live && store.size() === 0;
    }),
  );
  t.pass();
});
