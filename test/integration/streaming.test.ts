import test from "ava";
import { api, assertStreamConforms, stream, taskBody, type SseEvent } from "../support/http.js";
import { TestSystem } from "../support/system.js";

let sys: TestSystem;

test.before(async () => {
  sys = await TestSystem.start({
    coreFlags: { "metrics-port": "0" },
    workers: [
      { replica: "r1", slots: 2, tokensPerSecond: 400 },
      { replica: "r2", slots: 2, tokensPerSecond: 400 },
    ],
  });
});
test.after.always(async () => sys?.stop());

async function admit(t: Parameters<typeof api>[0], body = taskBody(), headers: Record<string, string> = {}) {
  const res = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body, headers });
  t.is(res.status, 202, res.text);
  return { body, res };
}

function tokens(events: SseEvent[]): string[] {
  return events.filter((e) => e.event === "token").map((e) => e.data.t as string);
}

/** started -> (metrics|token)* -> end|error, token indices 0..n-1, ids strictly increasing. */
function assertOrdering(t: Parameters<typeof api>[0], events: SseEvent[]) {
  t.is(events[0]?.event, "started");
  const last = events.at(-1)!;
  t.true(last.event === "end" || last.event === "error", `last event is terminal, got ${last.event}`);
  for (const e of events.slice(1, -1)) t.true(e.event === "token" || e.event === "metrics", `middle event ${e.event}`);
  t.deepEqual(
    events.filter((e) => e.event === "token").map((e) => e.data.i),
    events.filter((e) => e.event === "token").map((_, i) => i),
  );
  const ids = events.map((e) => Number(e.id));
  t.true(
    ids.every((id, i) => i === 0 || id > ids[i - 1]!),
    "ids increase",
  );
}

test("a task streams started, its tokens and end through a real SSE client", async (t) => {
  const { body } = await admit(t, taskBody({ max_tokens: 24 }));
  const path = `/v1/tasks/${body.task_id}/stream`;
  const s = await stream(sys.edgeUrl, path);
  await s.done;
  assertStreamConforms(t, path, s);
  t.is(s.status, 200);
  t.regex(s.headers.get("content-type") ?? "", /^text\/event-stream/);
  t.is(s.headers.get("cache-control"), "no-cache");
  assertOrdering(t, s.events);
  const end = s.events.at(-1)!;
  t.is(end.event, "end");
  t.is(end.data.tokens_out, 24);
  t.is(end.data.decode_ms, end.data.decode_time_ms);
  t.is(end.data.stop_reason, "max_tokens");
  t.is(tokens(s.events).length, 24);
  t.is(typeof s.events[0]!.data.queue_position, "number");
  t.is(typeof s.events[0]!.data.predicted_start_ms, "number");
});

test("X-Correlation-Id is echoed on admission and on the stream, and minted when absent", async (t) => {
  const { body, res } = await admit(t, taskBody({ max_tokens: 2 }), { "X-Correlation-Id": "corr-abc-123" });
  t.is(res.headers.get("x-correlation-id"), "corr-abc-123");
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`, { "X-Correlation-Id": "corr-stream-1" });
  await s.done;
  t.is(s.headers.get("x-correlation-id"), "corr-stream-1");
  const minted = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1 }) });
  t.regex(minted.headers.get("x-correlation-id") ?? "", /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test("the same prompt and seed give a byte-identical token stream; another seed does not", async (t) => {
  const run = async (seed: number) => {
    const { body } = await admit(t, taskBody({ seed, max_tokens: 20, prompt: "determinism check" }));
    const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
    await s.done;
    return tokens(s.events).join("");
  };
  const a = await run(1234);
  const b = await run(1234);
  const c = await run(99);
  t.is(a, b);
  t.not(a, c);
});

test("a stream opened after the task finished replays every event", async (t) => {
  const { body } = await admit(t, taskBody({ max_tokens: 5 }));
  const first = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
  await first.done;
  const late = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
  await late.done;
  t.deepEqual(late.events, first.events);
});

test("Last-Event-ID resumes after that event without duplicates or gaps", async (t) => {
  const { body } = await admit(t, taskBody({ max_tokens: 12 }));
  const path = `/v1/tasks/${body.task_id}/stream`;
  const full = await stream(sys.edgeUrl, path);
  await full.done;
  const cut = full.events[5]!;
  const resumed = await stream(sys.edgeUrl, path, { "Last-Event-ID": cut.id! });
  await resumed.done;
  assertStreamConforms(t, path, resumed);
  t.deepEqual(resumed.events, full.events.slice(6));
});

test("unicode prompts travel intact and tokens come back as valid UTF-8", async (t) => {
  const { body } = await admit(t, taskBody({ prompt: "héllo 日本語 🦙 \u0000 \ud83d", max_tokens: 8 }));
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
  await s.done;
  t.is(s.events.at(-1)!.event, "end");
  for (const tok of tokens(s.events)) t.false(tok.includes("\ufffd"), `no replacement characters in ${tok}`);
});

test("cancel mid-stream: 204, the stream ends with end{stop_reason: canceled}, no token after it, the slot is freed", async (t) => {
  const { body } = await admit(t, taskBody({ max_tokens: 400, prompt: "[[mock tokens_per_second=40]] a long story" }));
  const path = `/v1/tasks/${body.task_id}/stream`;
  const s = await stream(sys.edgeUrl, path);
  await s.waitFor(3, "token");
  const cancel = await api(t, sys.edgeUrl, "POST", `/v1/tasks/${body.task_id}/cancel`);
  t.is(cancel.status, 204);
  await s.done;
  assertStreamConforms(t, path, s);
  const end = s.events.at(-1)!;
  t.is(end.event, "end");
  t.is(end.data.stop_reason, "canceled");
  t.is(end.data.tokens_out, tokens(s.events).length, "tokens_out counts exactly the tokens delivered");
  t.true(tokens(s.events).length < 400);
  // A second cancel of a finished task is a no-op 204.
  t.is((await api(t, sys.edgeUrl, "POST", `/v1/tasks/${body.task_id}/cancel`)).status, 204);
  // The replay is identical: nothing was appended after the cancel.
  const replay = await stream(sys.edgeUrl, path);
  await replay.done;
  t.deepEqual(replay.events, s.events);
});

test.serial("cancel of a queued task ends its stream before any token", async (t) => {
  // Fill every slot (2 replicas x 2 slots) with slow tasks so the next one queues.
  const blockers = [];
  for (let i = 0; i < 4; i++)
    blockers.push((await admit(t, taskBody({ max_tokens: 500, prompt: "[[mock tokens_per_second=20]] block" }))).body);
  const { body, res } = await admit(t, taskBody({ max_tokens: 5 }));
  t.true(res.json.queue_position >= 0);
  t.is((await api(t, sys.edgeUrl, "POST", `/v1/tasks/${body.task_id}/cancel`)).status, 204);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
  await s.done;
  t.deepEqual(
    s.events.map((e) => e.event),
    ["started", "end"],
    "never placed, never a token",
  );
  t.is(s.events.at(-1)!.data.stop_reason, "canceled");
  for (const b of blockers) t.is((await api(t, sys.edgeUrl, "POST", `/v1/tasks/${b.task_id}/cancel`)).status, 204);
});

test.serial("work queues when every slot is busy and reports its queue position", async (t) => {
  const blockers = [];
  for (let i = 0; i < 4; i++)
    blockers.push((await admit(t, taskBody({ max_tokens: 500, prompt: "[[mock tokens_per_second=20]] block" }))).body);
  const { body, res } = await admit(t, taskBody({ max_tokens: 3, priority: "batch" }));
  t.true(res.json.queue_position >= 0);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
  await s.waitFor(1, "started");
  t.is(s.events[0]!.data.queue_position, res.json.queue_position);
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(
    s.events.map((e) => e.event),
    ["started"],
    "still queued while every slot is busy",
  );
  // Free one slot: the queued task then runs to completion.
  await api(t, sys.edgeUrl, "POST", `/v1/tasks/${blockers[0]!.task_id}/cancel`);
  await s.done;
  t.is(s.events.at(-1)!.event, "end");
  t.is(tokens(s.events).length, 3);
  for (const b of blockers.slice(1)) await api(t, sys.edgeUrl, "POST", `/v1/tasks/${b.task_id}/cancel`);
});

test("a client that disconnects mid-stream leaves the system serving", async (t) => {
  const { body } = await admit(t, taskBody({ max_tokens: 200, prompt: "[[mock tokens_per_second=100]] x" }));
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
  await s.waitFor(2, "token");
  s.abort();
  await s.done;
  const again = await admit(t, taskBody({ max_tokens: 3 }));
  const s2 = await stream(sys.edgeUrl, `/v1/tasks/${again.body.task_id}/stream`);
  await s2.done;
  t.is(s2.events.at(-1)!.event, "end");
  await api(t, sys.edgeUrl, "POST", `/v1/tasks/${body.task_id}/cancel`);
});

test("many concurrent streams all complete with every token in order", async (t) => {
  const n = 30;
  const results = await Promise.all(
    Array.from({ length: n }, async (_, k) => {
      const { body } = await admit(t, taskBody({ max_tokens: 10 + (k % 5), priority: k % 2 ? "batch" : "interactive" }));
      const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
      await s.done;
      return { s, want: 10 + (k % 5) };
    }),
  );
  for (const { s, want } of results) {
    assertOrdering(t, s.events);
    t.is(tokens(s.events).length, want);
  }
});

test("GET /openapi.json serves the merged document, and /metrics the edge's metrics", async (t) => {
  const doc = await api(t, sys.edgeUrl, "GET", "/openapi.json");
  t.is(doc.status, 200);
  t.truthy(doc.json.paths["/v1/tasks"]);
  t.truthy(doc.json.paths["/v1/capabilities"]);
  const metrics = await api(t, sys.edgeUrl, "GET", "/metrics");
  t.regex(metrics.text, /http_requests_total/);
});

test("admission, placement, stream start and end, and cancel are logged with the required fields, never a line per token", async (t) => {
  const { body } = await admit(t, taskBody({ max_tokens: 60 }), { "X-Correlation-Id": "log-fields-check" });
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`, { "X-Correlation-Id": "log-fields-stream" });
  await s.done;
  const cancelled = await admit(t, taskBody({ max_tokens: 500, prompt: "[[mock tokens_per_second=20]] x" }), {
    "X-Correlation-Id": "log-fields-cancel",
  });
  await api(t, sys.edgeUrl, "POST", `/v1/tasks/${cancelled.body.task_id}/cancel`);
  await new Promise((r) => setTimeout(r, 300)); // let the log lines flush through the pipes

  const core = sys.logsOf(sys.core, body.task_id);
  const byEvent = (e: string) => core.find((l) => l.event === e);
  const common = ["job_id", "session_id", "engine", "engine_version", "pool_id", "replica_id", "correlation_id", "msg"];
  for (const [event, extra] of [
    ["admitted", ["queue_position", "predicted_start_ms"]],
    ["placed", []],
    ["finished", ["tokens_in", "tokens_out", "decode_time_ms"]],
  ] as const) {
    const line = byEvent(event);
    t.truthy(line, `core logs ${event}`);
    for (const f of [...common, ...extra]) t.true(line !== undefined && f in line, `${event} line has ${f}`);
    t.is(line?.correlation_id, "log-fields-check");
    t.is(typeof line?.msg, "string");
  }
  t.is(byEvent("finished")?.tokens_out, 60);
  const cancelLine = sys.logsOf(sys.core, cancelled.body.task_id).find((l) => l.event === "canceled");
  t.truthy(cancelLine, "core logs the cancel");
  t.is(cancelLine?.correlation_id, "log-fields-cancel");
  const edge = sys.logsOf(sys.edge, body.task_id);
  t.truthy(edge.find((l) => l.event === "stream_start" && l.correlation_id === "log-fields-stream"));
  t.truthy(edge.find((l) => l.event === "stream_end"));
  const everywhere = sys.allLogLines().filter((l) => l.includes(body.task_id));
  t.true(everywhere.length < 12, `a 60-token task produced ${everywhere.length} log lines in all`);
});

/** Core metric names and labels the project's metrics lint list requires. */
const REQUIRED_CORE_METRICS: Record<string, string[]> = {
  tasks_enqueued_total: ["engine", "engine_version", "pool_id", "replica_id", "priority"],
  tasks_started_total: ["engine", "engine_version", "pool_id", "replica_id", "priority"],
  tasks_canceled_total: ["engine", "engine_version", "pool_id", "replica_id", "reason"],
  tasks_rejected_total: ["engine", "reason"],
  queue_depth: ["engine", "engine_version", "pool_id", "priority"],
  latency_first_token_ms_bucket: ["engine", "engine_version", "pool_id", "priority"],
  latency_decode_ms_bucket: ["engine", "engine_version", "pool_id", "priority"],
  tokens_in_total: ["engine", "engine_version", "pool_id", "replica_id"],
  tokens_out_total: ["engine", "engine_version", "pool_id", "replica_id"],
  placement_decisions_total: ["outcome", "pinned", "fallback"],
  placement_candidates_considered: [],
};

test("core's /metrics exposes the required metrics with their labels", async (t) => {
  const { body } = await admit(t, taskBody({ max_tokens: 5 }));
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
  await s.done;
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ engine: "tgi" }) }); // a rejection
  const other = await admit(t, taskBody({ max_tokens: 500, prompt: "[[mock tokens_per_second=20]] x" }));
  await api(t, sys.edgeUrl, "POST", `/v1/tasks/${other.body.task_id}/cancel`);
  const text = await (await fetch(`http://${sys.coreMetricsAddress}/metrics`)).text();
  for (const [name, labels] of Object.entries(REQUIRED_CORE_METRICS)) {
    const sample = text.split("\n").find((l) => l.startsWith(name + "{") || l.startsWith(name + " "));
    t.truthy(sample, `${name} has a sample`);
    for (const label of labels) t.true(sample?.includes(`${label}="`), `${name} has label ${label}`);
  }
  t.regex(text, /tokens_out_total\{[^}]*pool_id="default"[^}]*\} \d+/);
  // Prometheus reads an empty label as no label; a task counted at admission has no replica yet and says so.
  t.regex(text, /^tasks_enqueued_total\{[^}]*replica_id="none"[^}]*\} \d+/m);
  t.deepEqual(
    text.split("\n").filter((l) => !l.startsWith("#") && l.includes('=""')),
    [],
    "no series with an empty label value",
  );
});

test("a caller's W3C traceparent travels edge -> core -> sidecar and tags their log lines", async (t) => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const { body } = await admit(t, taskBody({ max_tokens: 3 }), { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
  const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
  await s.done;
  await new Promise((r) => setTimeout(r, 300));
  t.is(sys.logsOf(sys.core, body.task_id).find((l) => l.event === "placed")?.trace_id, traceId);
  const workerLines = sys.workers.flatMap((w) => sys.logsOf(w.proc, body.task_id));
  t.is(workerLines.find((l) => l.event === "generation_start")?.trace_id, traceId);
});

test("a stream reopened after its task ended with Last-Event-ID at or past the last event is 204, so EventSource stops", async (t) => {
  const { body } = await admit(t, taskBody({ max_tokens: 4 }));
  const path = `/v1/tasks/${body.task_id}/stream`;
  const full = await stream(sys.edgeUrl, path);
  await full.done;
  const lastId = full.events.at(-1)!.id!;
  for (const lastEventId of [lastId, String(Number(lastId) + 1000)]) {
    const res = await api(t, sys.edgeUrl, "GET", path, { headers: { "Last-Event-ID": lastEventId } });
    t.is(res.status, 204, `Last-Event-ID ${lastEventId}`);
    t.is(res.text, "");
    t.truthy(res.headers.get("x-correlation-id"));
  }
  const before = await stream(sys.edgeUrl, path, { "Last-Event-ID": String(Number(lastId) - 1) });
  await before.done;
  t.is(before.status, 200, "one event short of the end still streams that event");
  t.deepEqual(before.events, full.events.slice(-1));
});
