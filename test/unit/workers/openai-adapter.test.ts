import test, { type ExecutionContext } from "ava";
import { Engine, StopReason, Workload } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K, type WorkerHealth } from "../../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure } from "../../../workers/engine-adapter.js";
import { createOpenAiAdapter, type OpenAiAdapter, type OpenAiAdapterOptions } from "../../../workers/openai/openai-adapter.js";
import { openAiRequest, parseStreamData } from "../../../workers/openai/openai-protocol.js";
import { FAKE_DEFAULTS, startFakeOpenAi, type FakeOpenAi, type FakeOptions } from "../../fakes/openai-fake.js";
import { collect, eventually, submitRequest } from "./helpers.js";

const API_KEY = "sk-test-0123456789abcdefSECRET";
const FAST_RETRY = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 };

async function fake(t: ExecutionContext, opts: FakeOptions = {}): Promise<FakeOpenAi> {
  const f = await startFakeOpenAi({ apiKey: API_KEY, ...opts });
  t.teardown(() => f.close());
  return f;
}

function adapter(t: ExecutionContext, f: { url: string }, opts: Partial<OpenAiAdapterOptions> = {}): OpenAiAdapter {
  const a = createOpenAiAdapter({
    baseUrl: f.url,
    modelRef: "hf:acme/fake-model",
    engineModel: "fake-model",
    apiKey: API_KEY,
    pollIntervalMs: 20,
    http: { idleTimeoutMs: 2_000, retry: FAST_RETRY },
    ...opts,
  });
  t.teardown(() => a.stop());
  return a;
}

/** An adapter that is Ready (start() resolved), failing the test instead of hanging when it never gets there. */
async function ready(t: ExecutionContext, f: FakeOpenAi, opts: Partial<OpenAiAdapterOptions> = {}): Promise<OpenAiAdapter> {
  const a = adapter(t, f, opts);
  await within(a.start(), 3_000, "adapter ready");
  return a;
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

function failureOf(t: ExecutionContext, err: unknown): WorkerFailure {
  t.true(err instanceof WorkerFailure, `expected a WorkerFailure, got ${String(err)}`);
  return err as WorkerFailure;
}

test("chat by default: streams the tokens, reports prompt tokens from usage, sends model, max_tokens, seed and the key", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f);
  const out = await collect(a, submitRequest({ prompt: "tell me a story", maxTokens: 16, seed: 42 }));
  t.is(out.error, undefined);
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens);
  t.is(out.started, 0, "prompt tokens are only known from usage at the end");
  t.deepEqual(out.result, { stopReason: StopReason.STOP_REASON_EOS, tokensIn: 4 });
  const [req] = f.generations();
  t.is(req!.path, "/v1/chat/completions");
  t.deepEqual(req!.body, {
    model: "fake-model",
    messages: [{ role: "user", content: "tell me a story" }],
    max_tokens: 16,
    stream: true,
    stream_options: { include_usage: true },
    seed: 42,
  });
  t.is(req!.headers.authorization, `Bearer ${API_KEY}`);
});

test("max_tokens reached maps to MAX_TOKENS; api: completions uses /v1/completions with the prompt and no seed when the task has none", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f, { api: "completions" });
  const out = await collect(a, submitRequest({ prompt: "one two", maxTokens: 3 }));
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens.slice(0, 3));
  t.is(out.result?.stopReason, StopReason.STOP_REASON_MAX_TOKENS);
  t.is(out.result?.tokensIn, 2);
  const [req] = f.generations();
  t.is(req!.path, "/v1/completions");
  t.is(req!.body.prompt, "one two");
  t.false("seed" in req!.body);
  t.is(a.info().features.api, "completions");
});

test("a task with inputs goes to chat with one user message per input, whatever the api option", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f, { api: "completions" });
  const out = await collect(a, submitRequest({ prompt: "", inputs: ["first", "second one"], maxTokens: 2 }));
  t.is(out.error, undefined);
  const [req] = f.generations();
  t.is(req!.path, "/v1/chat/completions");
  t.deepEqual(req!.body.messages, [
    { role: "user", content: "first" },
    { role: "user", content: "second one" },
  ]);
});

test("frames split across TCP chunks at arbitrary bytes keep every token and multi-byte character intact", async (t) => {
  const tokens = ["ä", "日本語", " 🦙🦙", "é\u0301", "\n", "\"quoted\"", "data: not a field"];
  for (const splitBytes of [1, 3, 7]) {
    const f = await fake(t, { tokens, splitBytes });
    const a = await ready(t, f);
    const out = await collect(a, submitRequest({ maxTokens: 16 }));
    t.is(out.error, undefined, `splitBytes ${splitBytes}`);
    t.deepEqual(out.texts, tokens, `splitBytes ${splitBytes}`);
    t.true(out.batches.every((b) => b.length > 0));
    t.true(out.batches.length > 1, "the stream arrived in pieces");
  }
});

test("a stream that arrives in one socket chunk reaches the sink as one batch", async (t) => {
  const f = await fake(t, { coalesce: true });
  const a = await ready(t, f);
  const out = await collect(a, submitRequest({ maxTokens: 16 }));
  t.deepEqual(out.batches, [FAKE_DEFAULTS.tokens]);
  t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS);
});

test("an error before the stream rejects with the mapped kind and the engine's message, and starts nothing", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f);
  const cases = [
    { status: 400, message: "This model's maximum context length is 4096 tokens", kind: K.WORKER_ERROR_KIND_INVALID_REQUEST, retriable: false },
    { status: 429, message: "Rate limit reached for requests", kind: K.WORKER_ERROR_KIND_CAPACITY, retriable: true },
    { status: 503, message: "The server is overloaded", kind: K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, retriable: true },
    { status: 500, message: "The server had an error", kind: K.WORKER_ERROR_KIND_ENGINE_ERROR, retriable: false },
  ];
  for (const c of cases) {
    f.setBehaviour({ failBefore: { status: c.status, message: c.message } });
    const out = await collect(a, submitRequest());
    const failure = failureOf(t, out.error);
    t.is(failure.kind, c.kind, `HTTP ${c.status}`);
    t.is(failure.retriable, c.retriable, `HTTP ${c.status}`);
    t.is(failure.message, `POST /v1/chat/completions: HTTP ${c.status}: ${c.message}`);
    t.is(out.started, undefined);
    t.deepEqual(out.texts, []);
  }
});

test("an error object inside the stream fails with ENGINE_ERROR after the tokens before it were delivered", async (t) => {
  const f = await fake(t, { failAfter: { tokens: 2, message: "CUDA error: an illegal memory access" } });
  const a = await ready(t, f);
  const out = await collect(a, submitRequest({ maxTokens: 16 }));
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens.slice(0, 2));
  t.is(out.started, 0);
  const failure = failureOf(t, out.error);
  t.is(failure.kind, K.WORKER_ERROR_KIND_ENGINE_ERROR);
  t.regex(failure.message, /CUDA error: an illegal memory access/);
});

test("an engine that goes silent mid-stream times out (TIMEOUT) and the connection is closed", async (t) => {
  const f = await fake(t, { hangAfter: 2 });
  const a = await ready(t, f, { http: { idleTimeoutMs: 150, retry: FAST_RETRY } });
  const t0 = Date.now();
  const out = await collect(a, submitRequest({ maxTokens: 16 }));
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens.slice(0, 2));
  const failure = failureOf(t, out.error);
  t.is(failure.kind, K.WORKER_ERROR_KIND_TIMEOUT);
  t.true(failure.retriable);
  t.true(Date.now() - t0 < 2_000);
  const [req] = f.generations();
  t.true((await within(req!.ended, 1_000, "engine sees the close")).closedByClient);
});

test("a connection dropped mid-stream fails with RESET", async (t) => {
  const f = await fake(t, { dropAfter: 3 });
  const a = await ready(t, f);
  const out = await collect(a, submitRequest({ maxTokens: 16 }));
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens.slice(0, 3));
  t.is(failureOf(t, out.error).kind, K.WORKER_ERROR_KIND_RESET);
});

test("cancel: aborting the signal closes the engine's request and resolves CANCELED promptly", async (t) => {
  const f = await fake(t, { frameDelayMs: 100, tokens: Array.from({ length: 50 }, (_, i) => `t${i} `) });
  const a = await ready(t, f);
  const controller = new AbortController();
  const texts: string[] = [];
  const t0 = Date.now();
  const result = await a.generate(submitRequest({ maxTokens: 50 }), controller.signal, {
    started: () => {},
    tokens: (batch) => {
      texts.push(...batch);
      controller.abort();
    },
  });
  t.is(result.stopReason, StopReason.STOP_REASON_CANCELED);
  t.true(Date.now() - t0 < 1_000);
  t.deepEqual(texts, ["t0 "]);
  const [req] = f.generations();
  const ended = await within(req!.ended, 1_000, "engine sees the close");
  t.true(ended.closedByClient);
  t.false(ended.finished);
});

test("aborting before the engine answers resolves CANCELED without calling started", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f);
  const controller = new AbortController();
  controller.abort();
  const out = await collect(a, submitRequest(), controller.signal);
  t.deepEqual(out.result, { stopReason: StopReason.STOP_REASON_CANCELED });
  t.is(out.started, undefined);
  t.is(f.generations().length, 0);
});

test("engine restart: health goes down while it is away and Ready again when it is back on the same port", async (t) => {
  let f = await fake(t);
  const a = await ready(t, f);
  const seen: WorkerHealth[] = [];
  a.onHealthChange((h) => seen.push(h));
  t.true(a.health().ready);

  await f.close();
  t.true(await eventually(() => !a.health().live && !a.health().ready, 3_000), "down after the engine went away");
  t.regex(a.health().lastError, /ECONNREFUSED|connect/);

  f = await fake(t, { port: f.port });
  t.true(await eventually(() => a.health().ready, 3_000), "Ready again after the restart");
  t.deepEqual(
    seen.map((h) => h.ready).filter((r, i, all) => i === 0 || r !== all[i - 1]),
    [false, true],
  );
  const out = await collect(a, submitRequest());
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens);
});

test("not Ready, with a clear reason, while the engine does not list the model; Ready once it does", async (t) => {
  const f = await fake(t, { models: ["other-model", "third-model"] });
  const a = adapter(t, f);
  const started = a.start();
  t.true(await eventually(() => a.health().lastError !== "not probed yet" && a.health().lastError !== "not started", 2_000));
  t.false(a.health().ready);
  t.regex(a.health().lastError, /does not serve model "fake-model".*other-model, third-model/);
  f.setBehaviour({ models: ["other-model", "fake-model"] });
  await within(started, 2_000, "start resolves at Ready");
  t.true(a.health().ready);
});

test("a loading engine (503) is not Ready and says why; stop() ends a start() still waiting", async (t) => {
  const f = await fake(t, { health: "loading" });
  const a = adapter(t, f);
  const started = a.start();
  t.true(await eventually(() => /503/.test(a.health().lastError), 2_000));
  t.false(a.health().ready);
  t.regex(a.health().lastError, /the model is still loading/);
  await a.stop();
  await within(started, 1_000, "start resolves on stop");
  t.deepEqual(a.health(), { live: false, ready: false, lastError: "stopped" });
});

test("info: the openai engine and adapter, no version or digest it cannot know, slots from options (default 4)", async (t) => {
  const f = await fake(t);
  const a = await ready(t, f);
  t.deepEqual(a.info(), {
    engine: Engine.ENGINE_OPENAI,
    adapter: "openai",
    engineVersion: "",
    modelRef: "hf:acme/fake-model",
    modelDigest: "",
    ctxMax: 0,
    workloads: [Workload.WORKLOAD_COMPLETION],
    deviceMask: "",
    vramTotalBytes: 0,
    vramFreeBytes: 0,
    servesAnyModel: false,
    features: { seed: "true", cancel: "abort", api: "chat" },
  });
  t.is(a.slotsTotal(), 4);
  t.is((a as { kvCacheUsageRatio?: unknown }).kvCacheUsageRatio, undefined);
  t.is(adapter(t, f, { slots: 12 }).slotsTotal(), 12);
  t.is(adapter(t, f, { slots: 0 }).slotsTotal(), 4);
});

test("ctx_max comes from the model card when the server lists max_model_len; a base URL ending in /v1 works", async (t) => {
  const f = await fake(t, { flavour: "vllm", maxModelLen: 32768 });
  const a = await ready(t, f, { baseUrl: `${f.url}/v1/` });
  t.is(a.info().ctxMax, 32768);
  const out = await collect(a, submitRequest({ maxTokens: 2 }));
  t.deepEqual(out.texts, FAKE_DEFAULTS.tokens.slice(0, 2));
});

test("the API key never appears in an error: rejected key echoed by the server, key echoed in a stream, health", async (t) => {
  const f = await fake(t, { apiKey: "sk-the-right-one" });
  const a = adapter(t, f);
  void a.start();
  t.true(await eventually(() => /401/.test(a.health().lastError), 2_000));
  const texts: string[] = [a.health().lastError];

  const out = await collect(a, submitRequest());
  const failure = failureOf(t, out.error);
  t.is(failure.kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE, "a rejected key is the deployment's fault, not the task's");
  t.regex(failure.message, /HTTP 401: Incorrect API key provided/);
  texts.push(failure.message);

  const g = await fake(t, { failAfter: { tokens: 1, message: `upstream said: Authorization: Bearer ${API_KEY}; key=${API_KEY}` } });
  const b = await ready(t, g);
  const streamed = await collect(b, submitRequest());
  texts.push(failureOf(t, streamed.error).message);
  g.setBehaviour({ failAfter: undefined, failBefore: { status: 400, message: `bad request from key ${API_KEY}` } });
  texts.push(failureOf(t, (await collect(b, submitRequest())).error).message);

  for (const text of texts) {
    t.false(text.includes(API_KEY), text);
    t.false(text.includes("0123456789abcdef"), text);
  }
  t.true(texts.some((m) => m.includes("[redacted]")));
});

test("an engine that is not there fails generations with a retriable ENGINE_UNAVAILABLE after connect retries", async (t) => {
  const f = await fake(t);
  const port = f.port;
  await f.close();
  const a = adapter(t, { url: `http://127.0.0.1:${port}` });
  const out = await collect(a, submitRequest());
  const failure = failureOf(t, out.error);
  t.is(failure.kind, K.WORKER_ERROR_KIND_ENGINE_UNAVAILABLE);
  t.true(failure.retriable);
  t.false(failure.message.includes(API_KEY));
});

test("protocol: stream frames of both APIs, usage-only chunks, errors, [DONE]", (t) => {
  t.deepEqual(parseStreamData('{"choices":[{"index":0,"text":"hi","finish_reason":null}]}'), { type: "chunk", text: "hi" });
  t.deepEqual(parseStreamData('{"choices":[{"index":0,"delta":{"content":"yo"},"finish_reason":"length"}]}'), {
    type: "chunk",
    text: "yo",
    finishReason: "length",
  });
  t.deepEqual(parseStreamData('{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}],"usage":null}'), { type: "chunk", text: "" });
  t.deepEqual(parseStreamData('{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}'), {
    type: "chunk",
    text: "",
    usage: { promptTokens: 7, completionTokens: 3 },
  });
  t.deepEqual(parseStreamData('{"error":{"message":"boom","type":"server_error"}}'), { type: "error", message: "boom" });
  t.deepEqual(parseStreamData('{"object":"error","message":"old vllm","type":"BadRequestError","code":400}'), { type: "error", message: "old vllm" });
  t.deepEqual(parseStreamData("[DONE]"), { type: "done" });
  t.throws(() => parseStreamData("not json"));
});

test("protocol: no max_tokens for a task without a limit", (t) => {
  const { body } = openAiRequest(submitRequest({ maxTokens: 0 }), "m", "completions");
  t.false("max_tokens" in body);
});
