import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api, stream, taskBody } from "../support/http.js";
import { TestSystem } from "../support/system.js";
import type { Json } from "../support/json.js";
import { bearer, testKeys, writeKeysFile } from "../support/test-keys.js";

type T = Parameters<typeof api>[0];
const post = (t: T, sys: TestSystem, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  api(t, sys.edgeUrl, "POST", "/v1/tasks", { body, headers });
const long = (overrides: Record<string, unknown> = {}) =>
  taskBody({ max_tokens: 2000, ctx: 4096, deadline_ms: 3_600_000, prompt: "[[mock tokens_per_second=20]] keep busy", ...overrides });

function assertBackpressure(t: T, res: Awaited<ReturnType<typeof api<Json>>>, code: string, policy: string) {
  t.is(res.status, 429);
  t.is(res.json.code, code);
  t.is(res.json.policy_label, policy);
  t.true(res.json.retriable);
  t.true(res.json.retry_after_ms > 0);
  t.is(Number(res.headers.get("x-backoff-ms")), res.json.retry_after_ms);
  t.is(res.headers.get("retry-after"), String(Math.max(1, Math.ceil(res.json.retry_after_ms / 1000))));
}

test("drop-lru: a full queue drops its oldest batch task for a newcomer; with no batch task to drop the newcomer gets QUEUE_FULL_DROP_LRU", async (t) => {
  const sys = await TestSystem.start({
    coreFlags: { "queue-capacity": "2", "queue-policy": "drop-lru" },
    workers: [{ replica: "one", slots: 1 }],
  });
  t.teardown(() => sys.stop());
  t.is((await post(t, sys, long())).status, 202); // runs
  const oldestBatch = long({ priority: "batch" });
  t.is((await post(t, sys, oldestBatch)).status, 202);
  const newerBatch = long({ priority: "batch" });
  t.is((await post(t, sys, newerBatch)).status, 202);
  const newcomer = long({ priority: "interactive" });
  t.is((await post(t, sys, newcomer)).status, 202, "admitted by dropping the oldest batch task");
  const dropped = await stream(sys.edgeUrl, `/v1/tasks/${oldestBatch.task_id}/stream`);
  await dropped.done;
  t.deepEqual(
    dropped.events.map((e) => e.event),
    ["started", "error"],
  );
  t.is(dropped.events.at(-1)!.data.code, "QUEUE_FULL_DROP_LRU");
  // Queue now: newcomer (interactive) + newerBatch. Another interactive drops newerBatch; then nothing is left to drop.
  t.is((await post(t, sys, long())).status, 202);
  const refused = await post(t, sys, long());
  assertBackpressure(t, refused, "QUEUE_FULL_DROP_LRU", "drop-lru");
});

test("shed-low-priority: interactive work sheds the newest batch task; batch work is refused with ADMISSION_REJECT", async (t) => {
  const sys = await TestSystem.start({
    coreFlags: { "queue-capacity": "2", "queue-policy": "shed-low-priority" },
    workers: [{ replica: "one", slots: 1 }],
  });
  t.teardown(() => sys.stop());
  t.is((await post(t, sys, long())).status, 202);
  const first = long({ priority: "batch" });
  const newest = long({ priority: "batch" });
  t.is((await post(t, sys, first)).status, 202);
  t.is((await post(t, sys, newest)).status, 202);
  const batchRefused = await post(t, sys, long({ priority: "batch" }));
  assertBackpressure(t, batchRefused, "ADMISSION_REJECT", "shed-low-priority");
  t.is((await post(t, sys, long({ priority: "interactive" }))).status, 202);
  const shed = await stream(sys.edgeUrl, `/v1/tasks/${newest.task_id}/stream`);
  await shed.done;
  t.is(shed.events.at(-1)!.data.code, "ADMISSION_REJECT");
  const kept = await stream(sys.edgeUrl, `/v1/tasks/${first.task_id}/stream`);
  await kept.waitFor(1, "started");
  t.deepEqual(
    kept.events.map((e) => e.event),
    ["started"],
    "the older batch task is still queued",
  );
  kept.abort();
});

test("reject: the advised wait comes from the measured drain rate once tasks complete", async (t) => {
  const sys = await TestSystem.start({
    coreFlags: { "queue-capacity": "1" },
    workers: [{ replica: "one", slots: 1, tokensPerSecond: 200 }],
  });
  t.teardown(() => sys.stop());
  // Complete a few short tasks so core measures how fast the pool drains.
  for (let i = 0; i < 3; i++) {
    const b = taskBody({ max_tokens: 20 });
    await post(t, sys, b);
    await (
      await stream(sys.edgeUrl, `/v1/tasks/${b.task_id}/stream`)
    ).done;
  }
  t.is((await post(t, sys, long())).status, 202);
  t.is((await post(t, sys, long())).status, 202);
  const refused = await post(t, sys, long());
  assertBackpressure(t, refused, "ADMISSION_REJECT", "reject");
  t.not(refused.json.retry_after_ms, 1000, "not the cold-start default");
});

test("an infeasible deadline is refused with DEADLINE_UNMET once throughput is measured", async (t) => {
  const sys = await TestSystem.start({ workers: [{ replica: "slow", slots: 1, tokensPerSecond: 50 }] });
  t.teardown(() => sys.stop());
  const warm = taskBody({ max_tokens: 10 });
  await post(t, sys, warm);
  await (
    await stream(sys.edgeUrl, `/v1/tasks/${warm.task_id}/stream`)
  ).done;
  const res = await post(t, sys, taskBody({ max_tokens: 2000, ctx: 4096, deadline_ms: 1000 }));
  t.is(res.status, 400);
  t.is(res.json.code, "DEADLINE_UNMET");
  t.is(res.json.field, "/deadline_ms");
  t.regex(res.json.message, /exceeds deadline_ms 1000/);
  t.is((await post(t, sys, taskBody({ max_tokens: 5, deadline_ms: 60_000 }))).status, 202, "a feasible one is admitted");
});

test("max_tokens larger than ctx is INVALID_PARAMS naming max_tokens", async (t) => {
  const sys = await TestSystem.start({ workers: [{ replica: "one" }] });
  t.teardown(() => sys.stop());
  const res = await post(t, sys, taskBody({ ctx: 100, max_tokens: 200 }));
  t.is(res.status, 400);
  t.is(res.json.field, "/max_tokens");
});

test("per-key rate limits refuse with 429 before enqueue, each key with its own bucket", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "llorch-admission-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { keys, yaml } = testKeys({ alice: { role: "client" }, bob: { role: "client" }, fleet: { role: "worker" } });
  const keysFile = writeKeysFile(dir, yaml);
  const sys = await TestSystem.start({
    coreFlags: { "keys-file": keysFile },
    edgeFlags: { "keys-file": keysFile, "rate-limit-per-second": "0.01", "rate-limit-burst": "2" },
    workers: [{ replica: "one", slots: 4, env: { LLORCH_KEY: keys.fleet } }],
    ops: { key: keys.bob },
  });
  t.teardown(() => sys.stop());
  const alice = bearer(keys.alice);
  t.is((await post(t, sys, taskBody({ max_tokens: 1 }), alice)).status, 202);
  t.is((await post(t, sys, taskBody({ max_tokens: 1 }), alice)).status, 202);
  const limited = await post(t, sys, taskBody({ max_tokens: 1 }), alice);
  assertBackpressure(t, limited, "ADMISSION_REJECT", "rate-limit");
  t.true(limited.json.retry_after_ms <= 100_000, "at most one refill interval");
  t.is((await post(t, sys, taskBody({ max_tokens: 1 }), bearer(keys.bob))).status, 202, "another key is not affected");
  t.false(
    sys.allLogLines().some((l) => l.includes(keys.alice)),
    "the key never reaches a log line",
  );
});
