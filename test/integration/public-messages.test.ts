import test from "ava";
import { createServer } from "node:net";
import { api, stream, taskBody } from "../support/http.js";
import { TestSystem } from "../support/system.js";

// What clients read when something behind the edge fails (an engine that is
// down, a sidecar killed mid-stream, core gone) says so in words: no internal
// address, no socket error code, no stack frame. The logs keep the detail.

const LEAK = /127\.0\.0\.1:|\[::1\]:|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|\bat \S+ \(.*:\d+:\d+\)|Traceback/;

let sys: TestSystem;

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test.before(async () => {
  sys = await TestSystem.start({ workers: [{ replica: "victim", pool: "victim", slots: 1, tokensPerSecond: 20 }] });
  // Never ready, so started beside the system rather than waited for.
  const deadEngine = { pool: "dead", engine: "llamacpp", model: "hf:org/model" };
  await sys.startWorker(
    { ...deadEngine, flags: { "engine-url": `http://127.0.0.1:${await closedPort()}`, "serves-any-model": "false" } },
    "dead-engine",
  );
});
test.after.always(async () => sys?.stop());

test.serial("an engine that is down: pool health and the refusal say so without its address", async (t) => {
  const healthOf = () => api(t, sys.edgeUrl, "GET", "/v1/pools/dead/health");
  let res = await healthOf();
  // Until the sidecar's first health report arrives, core itself says "connecting".
  const reported = () => ![undefined, "", "connecting"].includes(res.json.metrics?.replicas?.[0]?.last_error);
  for (let i = 0; i < 200 && !reported(); i++) {
    await new Promise((r) => setTimeout(r, 100));
    res = await healthOf();
  }
  const lastError = String(res.json.metrics.replicas[0].last_error);
  t.regex(lastError, /connection refused/, lastError);
  // The replica's own address is a field of pool health by design; messages are what must not carry one.
  t.notRegex(lastError, LEAK);
  const task = await api(t, sys.edgeUrl, "POST", "/v1/tasks", {
    body: taskBody({ model_ref: "hf:org/model", placement: { mode: "pin", pin_pool_id: "dead" } }),
  });
  t.true(task.status >= 400, task.text);
  t.notRegex(task.text, LEAK);
});

test.serial("a sidecar killed mid-stream: the WORKER_RESET frame names the replica, not its address", async (t) => {
  const body = taskBody({ max_tokens: 200, placement: { mode: "pin", pin_pool_id: "victim" } });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${String(body.task_id)}/stream`);
  await s.waitFor(3, "token");
  await sys.killWorker("victim");
  await s.done;
  const error = s.events.at(-1)!;
  t.is(error.event, "error");
  t.is(error.data.code, "WORKER_RESET");
  t.regex(String(error.data.message), /^replica victim went away mid-stream/);
  t.notRegex(s.raw(), LEAK);
  // Core's own words for the lost watch streams reach pool health as long as the replica is listed.
  t.notRegex((await api(t, sys.edgeUrl, "GET", "/v1/pools/victim/health")).text, LEAK);
  const logged = sys.logsOf(sys.core, "worker_reset");
  t.true(
    logged.length > 0 && logged.every((l) => typeof l.detail === "string" && l.correlation_id !== undefined),
    "core logged the detail",
  );
});

test.serial("core gone: every answer is a typed 503 in words; the edge's log has the address under the correlation id", async (t) => {
  await sys.killCore();
  const requests: Array<[string, string, unknown]> = [
    ["POST", "/v1/tasks", taskBody()],
    ["GET", "/v1/tasks", undefined],
    ["GET", "/v1/pools", undefined],
    ["GET", "/v1/capabilities", undefined],
    ["GET", `/v1/tasks/${crypto.randomUUID()}/stream`, undefined],
    ["POST", "/v1/chat/completions", { model: "mock:tiny", messages: [{ role: "user", content: "hi" }] }],
    ["POST", "/v1/messages", { model: "mock:tiny", max_tokens: 2, messages: [{ role: "user", content: "hi" }] }],
  ];
  const ids: string[] = [];
  for (const [method, path, body] of requests) {
    const id = crypto.randomUUID();
    ids.push(id);
    const res = await fetch(sys.edgeUrl + path, {
      method,
      headers: { "Content-Type": "application/json", "X-Correlation-Id": id },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    t.is(res.status, 503, `${method} ${path}: ${text}`);
    t.regex(text, /core scheduler unreachable/, path);
    t.notRegex(text, LEAK, `${method} ${path}`);
  }
  const readyz = await fetch(`${sys.edgeUrl}/readyz`);
  t.is(readyz.status, 503);
  t.notRegex(await readyz.text(), LEAK);
  const details = sys.logsOf(sys.edge, "request_failed");
  for (const id of ids.slice(0, 4)) {
    const line = details.find((l) => l.correlation_id === id);
    t.regex(String(line?.detail), /UNAVAILABLE/, `the edge logged what happened for ${id}`);
  }
});
