import test from "ava";
import { Engine } from "../../../contracts/gen/llama_orch/v1/common.js";
import { PoolState } from "../../../core/scheduler/pool-state.js";

function pool(): PoolState {
  return new PoolState("p", Engine.ENGINE_LLAMACPP, 4);
}

test("a drain makes the pool unusable, sets its deadline, and runs the deadline callback once it passes", async (t) => {
  const p = pool();
  let passed = 0;
  p.startDrain(20, 1_000, () => passed++);
  t.true(p.draining);
  t.false(p.usable);
  t.is(p.drainDeadlineAt, 1_020);
  await new Promise((r) => setTimeout(r, 50));
  t.is(passed, 1);
  t.true(p.draining, "the pool stays drained until a reload succeeds");
});

test("draining again restarts the deadline: only the latest one fires", async (t) => {
  const p = pool();
  const fired: string[] = [];
  p.startDrain(20, 0, () => fired.push("first"));
  p.startDrain(40, 0, () => fired.push("second"));
  await new Promise((r) => setTimeout(r, 80));
  t.deepEqual(fired, ["second"]);
});

test("a successful reload ends a drain and its pending deadline; a failed one keeps its error", async (t) => {
  const p = pool();
  let passed = 0;
  p.startDrain(20, 0, () => passed++);
  p.setReloadState("reloading");
  t.is(p.reloadState, "reloading");
  p.setReloadState("rolling_back", { error: "r1: no such model" });
  t.is(p.lastReloadError, "r1: no such model");
  t.true(p.draining);
  p.setReloadState("idle", { succeeded: true });
  t.false(p.draining);
  t.is(p.drainDeadlineAt, undefined);
  t.is(p.lastReloadError, "");
  t.true(p.usable);
  await new Promise((r) => setTimeout(r, 50));
  t.is(passed, 0);
});

test("a pool mid-reload is not usable even when not draining", (t) => {
  const p = pool();
  p.setReloadState("reloading");
  t.false(p.usable);
  p.setReloadState("idle", { error: "rolled back" });
  t.true(p.usable);
  t.is(p.lastReloadError, "rolled back");
});
