import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { api, stream, taskBody } from "../support/http.js";
import { LLORCH, TestSystem } from "../support/system.js";

const KEY = "llorch-cors-secret-5d1e";
const PAGE = "http://page.example:8000";
const OTHER = "http://evil.example";
const run = promisify(execFile);

let keyed: TestSystem;
test.before(async () => {
  keyed = await TestSystem.start({ apiKey: KEY, edgeFlags: { "cors-origin": `${PAGE},http://127.0.0.1:9` }, workers: [{ replica: "r1" }] });
});
test.after.always(async () => keyed?.stop());

const bearer = { Authorization: `Bearer ${KEY}` };

function preflight(baseUrl: string, path: string, origin: string) {
  return fetch(baseUrl + path, {
    method: "OPTIONS",
    headers: { Origin: origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type" },
  });
}

const list = (header: string | null) => (header ?? "").split(",").map((h) => h.trim().toLowerCase());

test("a preflight from an allowed origin is answered before auth: 204, the methods and the headers fetch and EventSource need", async (t) => {
  const res = await preflight(keyed.edgeUrl, "/v1/tasks", PAGE);
  t.is(res.status, 204);
  t.is(res.headers.get("access-control-allow-origin"), PAGE);
  t.true(list(res.headers.get("access-control-allow-methods")).includes("post"));
  for (const h of ["authorization", "content-type", "last-event-id", "x-correlation-id"])
    t.true(list(res.headers.get("access-control-allow-headers")).includes(h), h);
  t.truthy(res.headers.get("access-control-max-age"));
  t.true(list(res.headers.get("vary")).includes("origin"));
  t.truthy(res.headers.get("x-correlation-id"));
});

test("requests from an allowed origin carry its Access-Control-Allow-Origin and expose the headers a page reads, errors and streams included", async (t) => {
  const body = taskBody({ max_tokens: 2 });
  const admitted = await api(t, keyed.edgeUrl, "POST", "/v1/tasks", { body, headers: { ...bearer, Origin: PAGE } });
  t.is(admitted.status, 202);
  t.is(admitted.headers.get("access-control-allow-origin"), PAGE);
  const exposed = list(admitted.headers.get("access-control-expose-headers"));
  for (const h of ["x-correlation-id", "x-task-id", "retry-after", "x-backoff-ms", "x-budget-tokens-remaining"])
    t.true(exposed.includes(h), h);
  const s = await stream(keyed.edgeUrl, `/v1/tasks/${body.task_id}/stream`, { ...bearer, Origin: PAGE });
  await s.done;
  t.is(s.headers.get("access-control-allow-origin"), PAGE);
  t.is(s.events.at(-1)?.event, "end");
  const refused = await api(t, keyed.edgeUrl, "POST", "/v1/tasks", { body: taskBody(), headers: { Origin: PAGE } });
  t.is(refused.status, 401);
  t.is(refused.headers.get("access-control-allow-origin"), PAGE, "the page can read why it was refused");
});

test("an origin not on the list, or no Origin at all, gets no CORS headers", async (t) => {
  const res = await preflight(keyed.edgeUrl, "/v1/tasks", OTHER);
  t.is(res.headers.get("access-control-allow-origin"), null);
  t.is(res.headers.get("access-control-allow-headers"), null);
  const admitted = await api(t, keyed.edgeUrl, "POST", "/v1/tasks", {
    body: taskBody({ max_tokens: 1 }),
    headers: { ...bearer, Origin: OTHER },
  });
  t.is(admitted.status, 202);
  t.is(admitted.headers.get("access-control-allow-origin"), null);
  const plain = await api(t, keyed.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1 }), headers: bearer });
  t.is(plain.headers.get("access-control-allow-origin"), null);
});

test('--cors-origin "*" without an API key allows every origin; without --cors-origin nothing does', async (t) => {
  const open = await TestSystem.start({ edgeFlags: { "cors-origin": "*" }, workers: [{ replica: "r1" }] });
  t.teardown(() => open.stop());
  const res = await preflight(open.edgeUrl, "/v1/tasks", OTHER);
  t.is(res.status, 204);
  t.is(res.headers.get("access-control-allow-origin"), "*");
  const admitted = await api(t, open.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1 }), headers: { Origin: OTHER } });
  t.is(admitted.headers.get("access-control-allow-origin"), "*");

  const plain = await TestSystem.start({ workers: [{ replica: "r1" }] });
  t.teardown(() => plain.stop());
  const none = await api(t, plain.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1 }), headers: { Origin: PAGE } });
  t.is(none.status, 202);
  t.is(none.headers.get("access-control-allow-origin"), null);
  t.is(none.headers.get("vary"), null);
});

test('the edge refuses to start with --cors-origin "*" and an API key, saying why', async (t) => {
  const r = await run(process.execPath, [LLORCH, "edge", "--port", "0", "--cors-origin", "*"], {
    env: { ...process.env, LLORCH_API_KEY: KEY },
    timeout: 20_000,
  }).then(
    () => ({ code: 0, stderr: "" }),
    (e: { code: number; stderr: string }) => e,
  );
  t.is(r.code, 1);
  t.regex(r.stderr, /refusing to start the edge with --cors-origin "\*" and an API key/);
  t.false(r.stderr.includes(KEY), "the key is not in the message");
});
