import test, { type ExecutionContext } from "ava";
import type { LaunchedProcess } from "../../cli/process-launcher.js";
import { api, assertStreamConforms, stream, taskBody, type SseStream } from "../support/http.js";
import { TestSystem } from "../support/system.js";

// SIGTERM drains core, the edge and a sidecar alike: nothing new is taken
// (a retriable 503 SHUTTING_DOWN with Retry-After, or no placement), what
// runs may finish within --shutdown-grace-ms, and what outlives it ends with
// a retriable typed error, never INTERNAL.

const GRACE_MS = 8_000;
// 20 tokens/s: 80 tokens (4 s) still run when SIGTERM comes, on a loaded machine too, and finish within the grace; 1,000 never do.
const SHORT_TOKENS = 80;
const short = () => taskBody({ max_tokens: SHORT_TOKENS });
const long = () => taskBody({ max_tokens: 1_000, ctx: 4096 });

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** SIGTERM, then wait until the process says it is draining (its own log line), so what follows meets the drain. */
async function terminate(sys: TestSystem, p: LaunchedProcess): Promise<void> {
  p.child.kill("SIGTERM");
  await until(`${p.name} drains`, () => sys.logsOf(p, '"shutting_down"').length > 0);
}

async function submitAndStream(t: ExecutionContext, sys: TestSystem, body: Record<string, unknown>): Promise<SseStream> {
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
  return stream(sys.edgeUrl, `/v1/tasks/${String(body.task_id)}/stream`);
}

function assertShuttingDown(t: ExecutionContext, res: { status: number; headers: Headers; json: Record<string, unknown> }): void {
  t.is(res.status, 503);
  t.like(res.json, { code: "SHUTTING_DOWN", retriable: true });
  t.truthy(res.headers.get("retry-after"), "Retry-After says when to come back");
}

test("core: admission refuses with SHUTTING_DOWN, the queued task ends at once, the short one finishes, the long one ends retriable", async (t) => {
  const sys = await TestSystem.start({
    coreFlags: { "shutdown-grace-ms": String(GRACE_MS) },
    workers: [{ replica: "w", slots: 2, tokensPerSecond: 20 }],
  });
  t.teardown(() => sys.stop());
  const [a, b, c] = [short(), long(), short()];
  const running = [await submitAndStream(t, sys, a), await submitAndStream(t, sys, b)];
  const queued = await submitAndStream(t, sys, c);
  await Promise.all(running.map((s) => s.waitFor(1, "token")));

  await terminate(sys, sys.core);
  assertShuttingDown(t, await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: short() }));
  await queued.done;
  t.like(queued.events.at(-1), { event: "error", data: { code: "SHUTTING_DOWN" } });
  t.is(queued.events.filter((e) => e.event === "token").length, 0);
  const [finished, cut] = running;
  await Promise.all([finished!.done, cut!.done]);
  t.like(finished!.events.at(-1), { event: "end", data: { tokens_out: SHORT_TOKENS } }, "the short task finished within the grace");
  t.like(cut!.events.at(-1), { event: "error", data: { code: "SHUTTING_DOWN" } }, "the long one outlived it");
  for (const s of [queued, finished!, cut!]) assertStreamConforms(t, "/v1/tasks/x/stream", s);
  t.is(await sys.core.exited, 0);
});

test("edge: admission and /readyz answer SHUTTING_DOWN, the short stream ends, the long one is cut resumable", async (t) => {
  const sys = await TestSystem.start({
    // The cut stream's task goes on in core while nobody reads it, for as long as this grace.
    coreFlags: { "disconnect-grace-ms": "60000" },
    edgeFlags: { "shutdown-grace-ms": String(GRACE_MS) },
    workers: [{ replica: "w", slots: 2, tokensPerSecond: 20 }],
  });
  t.teardown(() => sys.stop());
  const b = long();
  const [finished, cut] = [await submitAndStream(t, sys, short()), await submitAndStream(t, sys, b)];
  await cut.waitFor(1, "token");

  await terminate(sys, sys.edge);
  assertShuttingDown(t, await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: short() }));
  assertShuttingDown(t, await api(t, sys.edgeUrl, "GET", "/readyz"));
  await Promise.all([finished.done, cut.done]);
  t.is(finished.events.at(-1)!.event, "end");
  const frame = cut.events.at(-1)!;
  t.like(frame, { event: "error", data: { code: "SHUTTING_DOWN" } });
  assertStreamConforms(t, "/v1/tasks/x/stream", cut);
  t.is(await sys.edge.exited, 0);

  // The frame has no id, so Last-Event-ID stays the last token's: resuming through a new edge misses and repeats nothing.
  t.is(frame.id, undefined);
  const tokens = cut.events.filter((e) => e.event === "token");
  await sys.startEdge();
  const resumed = await stream(sys.edgeUrl, `/v1/tasks/${String(b.task_id)}/stream`, { "Last-Event-ID": tokens.at(-1)!.id! });
  await resumed.waitFor(1, "token");
  t.is(resumed.events.find((e) => e.event === "token")!.data.i, tokens.at(-1)!.data.i + 1);
  resumed.abort();
});

test("sidecar: turns unready so new work goes to another replica, lets the short generation finish, ends the long one retriable", async (t) => {
  const sys = await TestSystem.start({
    workers: [{ replica: "leaving", slots: 2, tokensPerSecond: 20, flags: { "shutdown-grace-ms": String(GRACE_MS) } }],
  });
  t.teardown(() => sys.stop());
  // A session that ran on "leaving": its next task would go back there (session affinity) if it could.
  const warm = taskBody({ max_tokens: 1 });
  await (
    await submitAndStream(t, sys, warm)
  ).done;
  const [finished, cut] = [await submitAndStream(t, sys, short()), await submitAndStream(t, sys, long())];
  await Promise.all([finished.waitFor(1, "token"), cut.waitFor(1, "token")]);
  await sys.startWorker({ slots: 2 }, "staying");
  await sys.waitForReadyReplicas(2);

  const leaving = sys.worker("leaving").proc;
  await terminate(sys, leaving);
  const next = await submitAndStream(t, sys, short());
  const sameSession = await submitAndStream(t, sys, { ...short(), session_id: warm.session_id });
  await Promise.all([next.done, sameSession.done]);
  for (const s of [next, sameSession]) {
    const placed = s.events.filter((e) => e.event === "metrics" && e.data.replica_id).at(-1);
    t.like(placed?.data, { replica_id: "staying" }, "placed on the replica that stays");
    t.is(s.events.at(-1)!.event, "end");
  }
  const health = await api(t, sys.edgeUrl, "GET", "/v1/pools/default/health");
  t.like(
    health.json.metrics.replicas.find((r: { replica_id: string }) => r.replica_id === "leaving"),
    { ready: false, last_error: "the worker is shutting down" },
  );
  await Promise.all([finished.done, cut.done]);
  t.like(finished.events.at(-1), { event: "end", data: { tokens_out: SHORT_TOKENS } });
  t.like(cut.events.at(-1), { event: "error", data: { code: "WORKER_RESET" } });
  t.is(await leaving.exited, 0);
});
