import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import test, { type ExecutionContext } from "ava";
import fc from "fast-check";
import { WorkerErrorKind as K } from "../../../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure } from "../../../../workers/engine-adapter.js";
import { EngineHttp, retryDelayMs, type EngineHttpOptions } from "../../../../workers/http/engine-http.js";
import type { SseFrame } from "../../../../workers/http/stream-decoder.js";

const FAST_RETRY = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 };

interface Served {
  url: string;
  port: number;
  hits: () => number;
  connections: () => number;
}

/** `handler` may be async: a rejection is left unhandled, so it fails the test run. */
async function serve(
  t: ExecutionContext,
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => unknown,
  port = 0,
): Promise<Served> {
  let hits = 0;
  let connections = 0;
  const server = http.createServer((req, res) => {
    hits++;
    void handler(req, res);
  });
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const address = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${address.port}`, port: address.port, hits: () => hits, connections: () => connections };
}

function client(t: ExecutionContext, opts: EngineHttpOptions): EngineHttp {
  const c = new EngineHttp({ retry: FAST_RETRY, ...opts });
  t.teardown(() => c.close());
  return c;
}

/** A port nothing listens on (it was free a moment ago). */
async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function sseHead(res: http.ServerResponse): void {
  res.writeHead(200, { "content-type": "text/event-stream" });
  res.flushHeaders();
}

async function collect<T>(batches: AsyncIterable<T[]>): Promise<T[][]> {
  const out: T[][] = [];
  for await (const batch of batches) out.push(batch);
  return out;
}

async function failure(t: ExecutionContext, promise: Promise<unknown>): Promise<WorkerFailure> {
  return t.throwsAsync(promise, { instanceOf: WorkerFailure });
}

test("GET retries 503 and then succeeds", async (t) => {
  const engine = await serve(t, (_req, res) => {
    if (engine.hits() < 3) res.writeHead(503).end('{"error":{"code":503,"message":"Loading model"}}');
    else res.end("ok");
  });
  const got = await client(t, { baseUrl: engine.url }).get("/health");
  t.is(got.status, 200);
  t.is(got.text, "ok");
  t.is(engine.hits(), 3);
});

test("GET does not retry 400, and gives up on 503 after `attempts`, resolving with it", async (t) => {
  const bad = await serve(t, (_req, res) => res.writeHead(400).end("no"));
  t.is((await client(t, { baseUrl: bad.url }).get("/x")).status, 400);
  t.is(bad.hits(), 1);

  const loading = await serve(t, (_req, res) => res.writeHead(503, { "retry-after": "1" }).end("loading"));
  const got = await client(t, { baseUrl: loading.url, retry: { ...FAST_RETRY, attempts: 4 } }).get("/health");
  t.is(got.status, 503);
  t.is(got.text, "loading");
  t.is(got.headers["retry-after"], "1");
  t.is(loading.hits(), 4);
});

test("GET retries transport failures and then rejects RESET", async (t) => {
  const engine = await serve(t, (req) => req.socket.destroy());
  const f = await failure(t, client(t, { baseUrl: engine.url }).get("/props"));
  t.is(f.kind, K.WORKER_ERROR_KIND_RESET);
  t.true(f.retriable);
  t.regex(f.message, /^GET \/props: /);
  t.is(engine.hits(), 3);
});

test("getJson parses 2xx and turns the engine's error body into a WorkerFailure", async (t) => {
  const engine = await serve(t, (req, res) => {
    if (req.url === "/props") res.end('{"total_slots":4}');
    else res.writeHead(404).end('{"detail":"Not Found"}');
  });
  const c = client(t, { baseUrl: engine.url });
  t.deepEqual(await c.getJson<{ total_slots: number }>("/props"), { status: 200, body: { total_slots: 4 } });
  const f = await failure(t, c.getJson("/slots"));
  t.is(f.kind, K.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.is(f.message, "GET /slots: HTTP 404: Not Found");
});

test("jittered retry delays stay within [0, maxDelayMs] and under the exponential ceiling", (t) => {
  fc.assert(
    fc.property(
      fc.record({ attempts: fc.constant(3), baseDelayMs: fc.nat({ max: 10_000 }), maxDelayMs: fc.nat({ max: 60_000 }) }),
      fc.integer({ min: 1, max: 2_000 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (retry, attempt, r) => {
        const delay = retryDelayMs(retry, attempt, () => r);
        const defaultRandom = retryDelayMs(retry, attempt);
        return (
          delay >= 0 &&
          delay <= retry.maxDelayMs &&
          delay <= retry.baseDelayMs * 2 ** Math.min(attempt - 1, 52) &&
          defaultRandom >= 0 &&
          defaultRandom <= retry.maxDelayMs
        );
      },
    ),
  );
  t.pass();
});

test("a stream yields frames split across chunk boundaries, one batch per chunk", async (t) => {
  const body = Buffer.from('data: {"content":"🦙"}\r\n\r\nevent: end\r\ndata: {"stop":true}\r\n\r\n');
  const llama = body.indexOf(0xf0);
  const crlf = body.indexOf("\r\n\r\n") + 1;
  const engine = await serve(t, async (req, res) => {
    req.resume();
    sseHead(res);
    res.write("data: a\n\ndata: b\n\ndata: c\n\n");
    for (const [from, to] of [
      [0, llama + 2],
      [llama + 2, crlf],
      [crlf, body.length],
    ] as const) {
      await sleep(20);
      res.write(body.subarray(from, to));
    }
    res.end();
  });
  const c = client(t, { baseUrl: engine.url });
  const s = await c.stream("/completion", { prompt: "hi", stream: true }, { signal: new AbortController().signal, format: "sse" });
  t.is(s.status, 200);
  t.is(s.headers["content-type"], "text/event-stream");
  const batches = await collect(s.batches);
  t.deepEqual(batches[0], [{ data: "a" }, { data: "b" }, { data: "c" }]);
  t.deepEqual(batches.flat(), [
    { data: "a" },
    { data: "b" },
    { data: "c" },
    { data: '{"content":"🦙"}' },
    { event: "end", data: '{"stop":true}' },
  ]);
  t.true(batches.every((b) => b.length > 0));
});

test("a JSON-lines stream yields lines, and the request body arrives as JSON", async (t) => {
  let received: unknown;
  const engine = await serve(t, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received = { json: JSON.parse(Buffer.concat(chunks).toString()), type: req.headers["content-type"], accept: req.headers.accept };
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.end('{"token":"日本"}\n\n{"done":true}');
    });
  });
  const s = await client(t, { baseUrl: engine.url }).stream(
    "/api/generate",
    { prompt: "é" },
    { signal: new AbortController().signal, format: "jsonl" },
  );
  t.deepEqual((await collect(s.batches)).flat(), ['{"token":"日本"}', '{"done":true}']);
  t.deepEqual(received, { json: { prompt: "é" }, type: "application/json", accept: "application/x-ndjson" });
});

test("a non-2xx stream rejects with the engine's message and the status's kind", async (t) => {
  const engine = await serve(t, (req, res) => {
    req.resume();
    if (req.url === "/completion") {
      res
        .writeHead(400)
        .end('{"error":{"code":400,"message":"the request exceeds the available context size","type":"invalid_request_error"}}');
    } else {
      res.writeHead(429).end('{"error":"Model is overloaded","error_type":"overloaded"}');
    }
  });
  const c = client(t, { baseUrl: engine.url });
  const signal = new AbortController().signal;
  const invalid = await failure(t, c.stream("/completion", {}, { signal, format: "sse" }));
  t.is(invalid.kind, K.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.false(invalid.retriable);
  t.is(invalid.message, "POST /completion: HTTP 400: the request exceeds the available context size");
  const busy = await failure(t, c.stream("/generate_stream", {}, { signal, format: "sse" }));
  t.is(busy.kind, K.WORKER_ERROR_KIND_CAPACITY);
  t.true(busy.retriable);
  t.is(busy.message, "POST /generate_stream: HTTP 429: Model is overloaded");
});

test("an error body echoing the API key is redacted in the failure", async (t) => {
  let auth: string | undefined;
  const engine = await serve(t, (req, res) => {
    auth = req.headers.authorization;
    req.resume();
    res.writeHead(401).end(
      JSON.stringify({
        error: { message: `Incorrect API key provided: sk-live-123456 (${req.headers.authorization}); org other-secret-9` },
      }),
    );
  });
  const c = client(t, { baseUrl: engine.url, headers: { Authorization: "Bearer sk-live-123456" }, secrets: ["other-secret-9"] });
  const f = await failure(t, c.stream("/v1/completions", { model: "m" }, { signal: new AbortController().signal, format: "sse" }));
  t.is(auth, "Bearer sk-live-123456");
  t.is(f.kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  t.is(f.message, "POST /v1/completions: HTTP 401: Incorrect API key provided: [redacted] ([redacted]); org [redacted]");
  t.is(c.redact("key=sk-live-123456"), "key=[redacted]");
});

// The socket's "close", not the request's: on Node >= 16 a server request emits "close" as soon as
// its body has been read, long before the client goes away.
test("aborting mid-stream closes the engine's socket and ends the iteration quietly", async (t) => {
  let socketClosed!: Promise<void>;
  let closed = false;
  const engine = await serve(t, (req, res) => {
    socketClosed = new Promise((resolve) =>
      req.socket.on("close", () => {
        closed = true;
        resolve();
      }),
    );
    req.resume();
    sseHead(res);
    res.write("data: first\n\n");
  });
  const controller = new AbortController();
  const s = await client(t, { baseUrl: engine.url }).stream("/completion", {}, { signal: controller.signal, format: "sse" });
  const seen: SseFrame[][] = [];
  for await (const batch of s.batches) {
    seen.push(batch);
    await sleep(20);
    t.false(closed, "open until the abort");
    controller.abort();
  }
  t.deepEqual(seen, [[{ data: "first" }]]);
  await socketClosed;
  t.pass("the engine saw the connection close");
});

test("breaking out of the batches closes the engine's socket too", async (t) => {
  let socketClosed!: Promise<void>;
  const engine = await serve(t, (req, res) => {
    socketClosed = new Promise((resolve) => req.socket.on("close", () => resolve()));
    req.resume();
    sseHead(res);
    res.write("data: first\n\n");
  });
  const s = await client(t, { baseUrl: engine.url }).stream("/completion", {}, { signal: new AbortController().signal, format: "sse" });
  for await (const _ of s.batches) break;
  await socketClosed;
  t.pass();
});

test("an engine silent for idleTimeoutMs mid-stream fails TIMEOUT", async (t) => {
  const engine = await serve(t, (req, res) => {
    req.resume();
    sseHead(res);
    res.write("data: first\n\n");
  });
  const c = client(t, { baseUrl: engine.url, idleTimeoutMs: 100 });
  const s = await c.stream("/completion", {}, { signal: new AbortController().signal, format: "sse" });
  const seen: SseFrame[][] = [];
  const f = await failure(
    t,
    (async () => {
      for await (const batch of s.batches) seen.push(batch);
    })(),
  );
  t.deepEqual(seen, [[{ data: "first" }]]);
  t.is(f.kind, K.WORKER_ERROR_KIND_TIMEOUT);
  t.true(f.retriable);
  t.is(f.message, "POST /completion: no data from the engine within 100 ms");
});

test("no response headers within the timeout fails TIMEOUT", async (t) => {
  const engine = await serve(t, (req) => req.resume());
  const c = client(t, { baseUrl: engine.url, retry: { ...FAST_RETRY, attempts: 1 } });
  const f = await failure(t, c.get("/health", { timeoutMs: 50 }));
  t.is(f.kind, K.WORKER_ERROR_KIND_TIMEOUT);
  t.is(f.message, "GET /health: no response headers within 50 ms");
});

test("a refused connection is ENGINE_UNAVAILABLE (retriable), and retryConnect retries it", async (t) => {
  const port = await freePort();
  const c = client(t, { baseUrl: `http://127.0.0.1:${port}`, retry: { attempts: 30, baseDelayMs: 20, maxDelayMs: 40 } });
  const signal = new AbortController().signal;

  const refused = await failure(t, c.stream("/completion", {}, { signal, format: "sse" }));
  t.is(refused.kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  t.true(refused.retriable);
  t.regex(refused.message, /^POST \/completion: connect ECONNREFUSED/);

  // The engine comes up while the stream keeps trying to connect.
  const starting = sleep(150).then(() =>
    serve(
      t,
      (req, res) => {
        req.resume();
        sseHead(res);
        res.end("data: up\n\n");
      },
      port,
    ),
  );
  const s = await c.stream("/completion", {}, { signal, format: "sse", retryConnect: true });
  t.deepEqual((await collect(s.batches)).flat(), [{ data: "up" }]);
  t.is((await starting).hits(), 1);
});

test("retryConnect does not retry once the request reached the engine", async (t) => {
  const engine = await serve(t, (req) => req.socket.destroy());
  const c = client(t, { baseUrl: engine.url });
  const f = await failure(t, c.stream("/completion", {}, { signal: new AbortController().signal, format: "sse", retryConnect: true }));
  t.is(f.kind, K.WORKER_ERROR_KIND_RESET);
  t.is(engine.hits(), 1);
});

test("aborting before the response rejects with the signal's reason", async (t) => {
  const engine = await serve(t, (req) => req.resume());
  const c = client(t, { baseUrl: engine.url });
  const controller = new AbortController();
  const pending = c.stream("/completion", {}, { signal: controller.signal, format: "sse" });
  setTimeout(() => controller.abort(new Error("cancelled by core")), 30);
  await t.throwsAsync(pending, { message: "cancelled by core" });
});

test("keep-alive reuses one connection across GETs and a finished stream", async (t) => {
  const engine = await serve(t, (req, res) => {
    req.resume();
    if (req.method === "POST") {
      sseHead(res);
      res.end("data: x\n\n");
    } else res.end("ok");
  });
  const c = client(t, { baseUrl: engine.url });
  await c.get("/health");
  await c.get("/props");
  const s = await c.stream("/completion", {}, { signal: new AbortController().signal, format: "sse" });
  await collect(s.batches);
  await c.get("/health");
  t.is(engine.hits(), 4);
  t.is(engine.connections(), 1);
});

test("a base URL path prefixes every request path", async (t) => {
  const engine = await serve(t, (req, res) => res.end(req.url));
  const c = client(t, { baseUrl: `${engine.url}/v1/` });
  t.is((await c.get("/models")).text, "/v1/models");
});

test("the client never caps how many streams run at once: 100 open streams reach the engine together (the sidecar's slots bound them)", async (t) => {
  let open = 0;
  let release!: () => void;
  const allOpen = new Promise<void>((r) => (release = r));
  const engine = await serve(t, async (req, res) => {
    req.resume();
    sseHead(res);
    res.write("data: first\n\n");
    if (++open === 100) release();
    await allOpen;
    res.end("data: last\n\n");
  });
  const c = client(t, { baseUrl: engine.url });
  const streams = await Promise.all(
    Array.from({ length: 100 }, () => c.stream("/completion", { prompt: "hi" }, { signal: new AbortController().signal, format: "sse" })),
  );
  const frames = await Promise.all(streams.map(async (s) => (await collect(s.batches)).flat().length));
  t.is(open, 100);
  t.deepEqual(new Set(frames), new Set([2]));
});
