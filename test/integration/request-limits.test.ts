import test from "ava";
import { api, stream, taskBody } from "../support/http.js";
import { rawRequest } from "../support/raw-http.js";
import { TestSystem } from "../support/system.js";

// What the edge refuses before any of it reaches core: JSON nested too deep,
// requests Node's HTTP parser cannot take, requests that do not arrive in time.

let sys: TestSystem;
const HEADERS_TIMEOUT_MS = 500;
const REQUEST_TIMEOUT_MS = 2_000;

test.before(async () => {
  sys = await TestSystem.start({
    edgeFlags: { "headers-timeout-ms": String(HEADERS_TIMEOUT_MS), "request-timeout-ms": String(REQUEST_TIMEOUT_MS) },
    workers: [{ slots: 2 }, { replica: "slow", pool: "slow", slots: 1, tokensPerSecond: 8 }],
  });
});
test.after.always(async () => sys?.stop());

/** `levels` objects inside one another, written as text (JSON.stringify would overflow the stack first). */
const nestedText = (levels: number, leaf = "1") => '{"a":'.repeat(levels) + leaf + "}".repeat(levels);
const nestedLists = (levels: number) => "[".repeat(levels) + "]".repeat(levels);

const post = (t: Parameters<typeof api>[0], path: string, rawBody: string) =>
  api(t, sys.edgeUrl, "POST", path, { rawBody, headers: { "Content-Type": "application/json" } });

test("a body nested deeper than --json-max-depth (64) is a 400 naming where, on every route that reads JSON", async (t) => {
  const bodies: Array<[string, string]> = [
    ["/v1/tasks", JSON.stringify(taskBody()).replace(/}$/, `,"extra":${nestedText(64)}}`)],
    ["/v1/artifacts", `{"kind":"trace","content":${nestedText(64)}}`],
    ["/v1/catalog/models", `{"id":"deep","digest":"sha256:01ab23cd45ef","verification":${nestedText(64)}}`],
    ["/v1/chat/completions", `{"model":"mock:tiny","messages":[{"role":"user","content":"hi"}],"metadata":${nestedLists(64)}}`],
    ["/v1/messages", `{"model":"mock:tiny","max_tokens":2,"messages":[{"role":"user","content":"hi"}],"metadata":${nestedText(64)}}`],
  ];
  for (const [path, body] of bodies) {
    const res = await post(t, path, body);
    t.is(res.status, 400, `${path}: ${res.text.slice(0, 200)}`);
    t.regex(res.text, /deeper than 64 levels at \/(extra|content|verification|metadata)(\/a|\/0)+/, path);
  }
  const native = await post(t, "/v1/artifacts", `{"kind":"trace","content":${nestedText(64)}}`);
  t.is(native.json.code, "INVALID_PARAMS");
  t.is(native.json.field, "/content" + "/a".repeat(63));
  const atTheLimit = await post(t, "/v1/tasks", JSON.stringify(taskBody()).replace(/}$/, `,"extra":${nestedText(63)}}`));
  t.is(atTheLimit.status, 202, "64 levels, the body's own included, pass");
});

test("about 2,000 levels, and 200,000, are the same 400: nothing recurses into them", async (t) => {
  for (const levels of [2_000, 200_000]) {
    for (const path of ["/v1/artifacts", "/v1/tasks", "/v1/catalog/models", "/v1/pools/default/drain"]) {
      const res = await post(t, path, nestedLists(levels));
      t.is(res.status, 400, `${path} at ${levels}: ${res.text.slice(0, 200)}`);
      t.is(res.json.code, "INVALID_PARAMS");
      t.regex(res.json.message, /deeper than 64 levels/);
    }
  }
});

test("artifact content at 33 levels, which core could not decode, is a 400 naming the field; 30 levels are stored", async (t) => {
  const deep = await post(t, "/v1/artifacts", `{"kind":"trace","content":${nestedText(33)}}`);
  t.is(deep.status, 400, deep.text);
  t.like(deep.json, { code: "INVALID_PARAMS", field: "/content" });
  t.regex(deep.json.message, /nests too deeply for protobuf/);
  const metadata = await post(t, "/v1/artifacts", `{"kind":"trace","content":{},"metadata":${nestedText(33)}}`);
  t.like(metadata.json, { code: "INVALID_PARAMS", field: "/metadata" });
  const fits = await post(t, "/v1/artifacts", `{"kind":"trace","content":${nestedText(30)}}`);
  t.is(fits.status, 201, fits.text);
  const back = await api(t, sys.edgeUrl, "GET", `/v1/artifacts/${fits.json.id}`);
  t.is(back.status, 200);
  t.is(JSON.stringify(back.json.content), nestedText(30));
});

/** The error envelope Node's parser errors now get: JSON, a correlation id, the connection closed. */
function assertEnvelope(t: Parameters<typeof api>[0], res: Awaited<ReturnType<typeof rawRequest>>, status: number, code: string) {
  t.is(res.status, status, res.body);
  t.regex(res.headers["content-type"] ?? "", /^application\/json/);
  t.regex(res.headers["x-correlation-id"] ?? "", /^[0-9a-f-]{36}$/);
  t.is(res.headers["connection"], "close");
  const body = JSON.parse(res.body) as { code: string; message: string };
  t.is(body.code, code);
  t.true(body.message.length > 0);
  return body;
}

const host = () => `Host: ${new URL(sys.edgeUrl).host}\r\n`;

test("Node's parser errors get the error envelope: duplicate Content-Length, a NUL in a header, a bad request line", async (t) => {
  const duplicate = await rawRequest(sys.edgeUrl, [`POST /v1/tasks HTTP/1.1\r\n${host()}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}`]);
  t.regex(assertEnvelope(t, duplicate, 400, "INVALID_PARAMS").message, /not valid HTTP\/1\.1: .*Content-Length/i);
  const nul = await rawRequest(sys.edgeUrl, [`GET /healthz HTTP/1.1\r\n${host()}X-Odd: a\0b\r\n\r\n`]);
  assertEnvelope(t, nul, 400, "INVALID_PARAMS");
  const garbage = await rawRequest(sys.edgeUrl, ["NOT A REQUEST LINE\r\n\r\n"]);
  assertEnvelope(t, garbage, 400, "INVALID_PARAMS");
});

test("a 100 KB header is a 431 with the envelope", async (t) => {
  const res = await rawRequest(sys.edgeUrl, [`GET /healthz HTTP/1.1\r\n${host()}X-Big: ${"x".repeat(100_000)}\r\n\r\n`]);
  t.regex(assertEnvelope(t, res, 431, "PAYLOAD_TOO_LARGE").message, /headers exceed 16384 bytes/);
});

test("an incomplete body is answered 408 and its connection closed once --request-timeout-ms has passed", async (t) => {
  const res = await rawRequest(sys.edgeUrl, [
    `POST /v1/tasks HTTP/1.1\r\n${host()}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"task_id":`,
  ]);
  const body = assertEnvelope(t, res, 408, "INVALID_PARAMS");
  t.regex(body.message, /did not arrive in time/);
  t.true(
    res.closedAfterMs >= REQUEST_TIMEOUT_MS - 50 && res.closedAfterMs < REQUEST_TIMEOUT_MS + 2_000,
    `closed after ${res.closedAfterMs} ms`,
  );
});

test("headers trickling in are cut at --headers-timeout-ms", async (t) => {
  const res = await rawRequest(sys.edgeUrl, [
    `GET /healthz HTTP/1.1\r\n${host()}`,
    { waitMs: 200 },
    "X-Slow: 1\r\n",
    { waitMs: 5_000 },
    "\r\n",
  ]);
  assertEnvelope(t, res, 408, "INVALID_PARAMS");
  t.true(res.closedAfterMs < REQUEST_TIMEOUT_MS - 300, `closed after ${res.closedAfterMs} ms, before the request timeout`);
});

test("an SSE stream that lasts longer than --request-timeout-ms is not cut by it", async (t) => {
  const body = taskBody({ max_tokens: 40, placement: { mode: "pin", pin_pool_id: "slow" } });
  const started = performance.now();
  const admitted = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
  t.is(admitted.status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${String(body.task_id)}/stream`);
  await s.done;
  const elapsed = performance.now() - started;
  t.true(elapsed > REQUEST_TIMEOUT_MS * 2, `the stream outlived the request timeout (${Math.round(elapsed)} ms)`);
  t.is(s.events.at(-1)?.event, "end");
  t.is(s.events.filter((e) => e.event === "token").length, 40);
});
