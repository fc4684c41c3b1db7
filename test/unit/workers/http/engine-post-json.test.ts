// EngineHttp.postJson: a POST whose answer comes whole (embeddings, rerank).
import http from "node:http";
import type { AddressInfo } from "node:net";
import test, { type ExecutionContext } from "ava";
import { WorkerErrorKind as K } from "../../../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure } from "../../../../workers/engine-adapter.js";
import { EngineHttp } from "../../../../workers/http/engine-http.js";

async function serve(t: ExecutionContext, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function client(t: ExecutionContext, url: string, idleTimeoutMs = 60_000): EngineHttp {
  const c = new EngineHttp({ baseUrl: url, headers: { authorization: "Bearer sk-post-secret" }, idleTimeoutMs });
  t.teardown(() => c.close());
  return c;
}

function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
  });
}

test("postJson sends the body as JSON and parses the whole answer, however it was chunked", async (t) => {
  let received: unknown;
  let accept: string | undefined;
  const url = await serve(t, (req, res) => {
    accept = req.headers.accept;
    void readJson(req).then((body) => {
      received = body;
      res.writeHead(200, { "content-type": "application/json" });
      const text = JSON.stringify({ data: [{ index: 0, embedding: [0.5, -0.25] }], note: "grüße 🦙" });
      // Split inside the multi-byte characters.
      const bytes = Buffer.from(text, "utf8");
      res.write(bytes.subarray(0, bytes.length - 3));
      setTimeout(() => res.end(bytes.subarray(bytes.length - 3)), 20);
    });
  });
  const answer = await client(t, url).postJson("/v1/embeddings", { input: ["a", "b"] }, { signal: new AbortController().signal });
  t.deepEqual(received, { input: ["a", "b"] });
  t.is(accept, "application/json");
  t.deepEqual(answer, { status: 200, body: { data: [{ index: 0, embedding: [0.5, -0.25] }], note: "grüße 🦙" } });
});

test("postJson: a non-2xx answer rejects with the engine's message, garbage rejects ENGINE_ERROR, both redacted", async (t) => {
  let mode: "refuse" | "garbage" = "refuse";
  const url = await serve(t, (req, res) => {
    void readJson(req).then(() => {
      if (mode === "refuse") {
        res.writeHead(501, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: 501, message: "no embeddings here (key sk-post-secret)", type: "not_supported_error" } }));
      } else {
        res.writeHead(200, { "content-type": "application/json" }).end("{not json sk-post-secret");
      }
    });
  });
  const c = client(t, url);
  const refused = await t.throwsAsync(c.postJson("/v1/embeddings", {}, { signal: new AbortController().signal }), {
    instanceOf: WorkerFailure,
  });
  t.is(refused.kind, K.WORKER_ERROR_KIND_ENGINE_ERROR);
  t.regex(refused.message, /^POST \/v1\/embeddings: HTTP 501: no embeddings here/);
  t.false(refused.message.includes("sk-post-secret"));
  mode = "garbage";
  const garbage = await t.throwsAsync(c.postJson("/rerank", {}, { signal: new AbortController().signal }), { instanceOf: WorkerFailure });
  t.is(garbage.kind, K.WORKER_ERROR_KIND_ENGINE_ERROR);
  t.regex(garbage.message, /^POST \/rerank: invalid JSON from the engine/);
});

test("postJson: aborting while the engine computes closes the connection and rejects with the signal's reason", async (t) => {
  let closed!: () => void;
  const sawClose = new Promise<void>((resolve) => (closed = resolve));
  const url = await serve(t, (_req, res) => {
    // Headers now, the answer never: an engine still computing.
    res.writeHead(200, { "content-type": "application/json" });
    res.write("{");
    res.on("close", () => closed());
  });
  const controller = new AbortController();
  const pending = client(t, url).postJson("/rerank", { query: "q" }, { signal: controller.signal });
  setTimeout(() => controller.abort(new Error("cancelled by the test")), 50);
  await t.throwsAsync(pending, { message: "cancelled by the test" });
  await sawClose;
  t.pass("the engine saw its connection closed");
});

test("postJson: an answer that stops mid-body fails TIMEOUT after the idle timeout", async (t) => {
  const url = await serve(t, (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.write('{"data": [');
  });
  const failure = await t.throwsAsync(client(t, url, 100).postJson("/v1/embeddings", {}, { signal: new AbortController().signal }), {
    instanceOf: WorkerFailure,
  });
  t.is(failure.kind, K.WORKER_ERROR_KIND_TIMEOUT);
  t.true(failure.retriable);
});
