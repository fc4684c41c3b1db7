import test from "ava";
import { api, assertStreamConforms, stream, taskBody } from "../support/http.js";
import { TestSystem } from "../support/system.js";

// Periodic metrics frames only when they say something new: a running task
// whose figures stand still gets no frame per tick (core ticks every 50 ms here).

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({ coreFlags: { "metrics-interval-ms": "50" }, workers: [{ replica: "r1", slots: 1, tokensPerSecond: 50 }] });
});
test.after.always(async () => sys?.stop());

test("a running task with steady figures gets its placement frame and one periodic frame, not one per tick", async (t) => {
  const body = taskBody({ max_tokens: 50 });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
  const path = `/v1/tasks/${String(body.task_id)}/stream`;
  const s = await stream(sys.edgeUrl, path);
  await s.done;
  assertStreamConforms(t, path, s);
  t.is(s.events.at(-1)?.event, "end");
  const metrics = s.events.filter((e) => e.event === "metrics");
  // About a second of tokens at a 50 ms tick would be some 20 frames if every tick wrote one.
  t.true(metrics.length <= 3, `${metrics.length} metrics frames`);
  t.true(metrics.length >= 1);
});

test("a task whose session has a token budget hears the budget fall as it runs", async (t) => {
  const budgeted = await TestSystem.start({
    coreFlags: { "metrics-interval-ms": "50", "session-token-budget": "10000" },
    workers: [{ replica: "r1", slots: 1, tokensPerSecond: 50 }],
  });
  t.teardown(() => budgeted.stop());
  const body = taskBody({ max_tokens: 50 });
  const admitted = await api(t, budgeted.edgeUrl, "POST", "/v1/tasks", { body });
  t.is(admitted.status, 202, admitted.text);
  const s = await stream(budgeted.edgeUrl, `/v1/tasks/${String(body.task_id)}/stream`);
  await s.done;
  const remaining = s.events.filter((e) => e.event === "metrics").map((e) => e.data.tokens_budget_remaining as number | undefined);
  t.true(remaining.length >= 3, JSON.stringify(remaining));
  t.true(remaining.every((v, i) => i === 0 || v === undefined || v <= (remaining[i - 1] ?? Infinity)));
});
