// A fake llama.cpp server (`llama-server`) speaking the HTTP API the llamacpp
// adapter uses, with knobs for the faults a real one shows. Shapes follow:
//   - ggml-org/llama.cpp tools/server/README.md ("API Endpoints": GET /health,
//     POST /completion and its streaming response fields `content`, `tokens`,
//     `stop`, `stop_type` none|eos|limit|word, `tokens_evaluated`,
//     `tokens_cached`, `truncated`, `timings`; GET /props with
//     `default_generation_settings.n_ctx`, `total_slots`, `model_path`,
//     `build_info`; GET /slots with `id`, `n_ctx`, `is_processing` and 501
//     without --slots; GET /metrics with the `llamacpp:*` metric table).
//   - tools/server/server-context.cpp and its tests for the error bodies:
//     `{"error":{"code":N,"message":...,"type":...}}`, e.g. 503
//     "Loading model"/unavailable_error, 501 "This server does not support
//     slots endpoint. Start it with `--slots`"/not_supported_error, 401
//     "Invalid API Key"/authentication_error.
//   - tools/server/README.md for the workloads that are not generation:
//     `--embedding, --embeddings` ("restrict to only support embedding use
//     case"), `--rerank, --reranking`, `--pooling {none,mean,cls,last,rank}`;
//     POST /v1/embeddings ("requires that the model uses a pooling different
//     than type none", OpenAI's shape: `data: [{embedding, index, object}]`,
//     `usage {prompt_tokens, total_tokens}`), POST /reranking and its aliases
//     /rerank, /v1/rerank, /v1/reranking (`query`, `documents`, `top_n`).
//     The answers and refusals follow the server's source
//     (format_embeddings_response_oaicompat, format_response_rerank:
//     `results: [{index, relevance_score}]` sorted by score and cut to top_n,
//     usage summing each task's tokens_evaluated; builds before the sort
//     answered in document order), and its 501s "This server does not support
//     embeddings. Start it with `--embeddings`", "... reranking. Start it with
//     `--reranking`", "... completions. Start it without `--embeddings`", and
//     400 "Pooling type 'none' is not OAI compatible. Please use a different
//     pooling type".
//   - tools/server/README.md for the slots: `id_slot` in POST /completion and
//     POST /slots/{id_slot}?action=erase (needs --slot-save-path), in
//     llamacpp-fake-slots.ts.
//   - tools/server/README.md for sampling and chat: POST /completion takes
//     `temperature`, `top_k`, `top_p`, `min_p`, `repeat_penalty`,
//     `presence_penalty`, `frequency_penalty`, `logit_bias` ([[id, bias]]),
//     `json_schema` (recorded with the request, not applied: the fake has no
//     model) and `stop` ("These words will not be included in the
//     completion"): the stream ends before the first stop string, with
//     `stop_type` "word" and `stopping_word`. POST /apply-template
//     {messages} answers {prompt}, here a ChatML rendering (the template
//     llama.cpp falls back to when a model has none).
//   - The orchestrator issue's capture of a recent build: each streamed frame
//     is `data: {...}\n\n` with one token, `id_slot` -1 until the final frame,
//     `tokens_predicted`/`tokens_evaluated` on every frame, no `data: [DONE]`
//     (the body just ends), and an engine failure after the 200 arrives as
//     `data: {"error":{...}}` with no final frame. Older builds also exported
//     `llamacpp:kv_cache_usage_ratio`, which current ones dropped: it is
//     served here only when `kvCacheUsageRatio` is set.
//
// Usage:
//   const fake = await startFakeLlamaCpp({ tokens: ["Hi", "!"], totalSlots: 2 });
//   ... point the adapter at fake.url ...
//   fake.setBehaviour({ failAfter: { tokens: 1, message: "boom" } });
//   fake.generations()[0].closedByClient   // did the client cancel?
//   await fake.close();                     // and startFakeLlamaCpp({ port: fake.port }) to "restart" it
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { closeServer, listen, readBody, type FakeRequest } from "./fake-http.js";
import { answerAfter, wordCount } from "./fake-pooling.js";
import {
  chatMlPrompt,
  embeddingsAnswer,
  errorType,
  metricsText,
  props,
  rerankAnswer,
  sendError,
  sendJson,
  slots,
  type FakeTotals,
} from "./llamacpp-fake-bodies.js";
import { finalFrame, frameWriter, tokenFrame } from "./llamacpp-fake-frames.js";
import { FakeSlots, slotAction } from "./llamacpp-fake-slots.js";
import { cutAtStop, stopsOf } from "./fake-stops.js";

export type { FakeRequest } from "./fake-http.js";

export interface FakeLlamaCppBehaviour {
  /** Token texts streamed by /completion, one frame each, at most n_predict of them. */
  tokens: string[];
  /** stop_type when the tokens run out before n_predict ("limit" when n_predict is reached). */
  stopType: "eos" | "word";
  /** Pause before each token frame after the first. */
  frameDelayMs: number;
  /**
   * When > 0, every frame is written in pieces of this many bytes (cutting
   * through UTF-8 characters and the blank line alike), with `splitDelayMs`
   * between pieces so they reach the client as separate socket chunks.
   */
  chunkBytes: number;
  splitDelayMs: number;
  /** /completion, /v1/embeddings and /rerank answer this status and a llama.cpp error body instead. */
  failBefore?: { status: number; message: string; type?: string };
  /** After this many token frames, one in-stream error frame, then the body ends (no final frame). */
  failAfter?: { tokens: number; message: string; code?: number; type?: string };
  /** After this many token frames, silence, with the response left open until the client leaves. */
  hangAfter?: number;
  /** ready: 200 {"status":"ok"}; loading: 503 "Loading model" on every endpoint; down: 500 "Model failed to load" on every endpoint. */
  health: "ready" | "loading" | "down";
  totalSlots: number;
  /** Per-slot context, reported as default_generation_settings.n_ctx and each slot's n_ctx. */
  ctx: number;
  buildInfo: string;
  modelPath: string;
  /** false: GET /slots answers 501 like a server started with --no-slots. */
  slotsEndpoint: boolean;
  /** false: GET /metrics answers 501 like a server started without --metrics. */
  metrics: boolean;
  /** Served as llamacpp:kv_cache_usage_ratio (older builds) when set and `metrics` is on. */
  kvCacheUsageRatio?: number;
  /** When set, every endpoint but /health and /models wants "Authorization: Bearer <apiKey>" and answers 401 otherwise. */
  apiKey?: string;
  /** Error messages quote the request's API key (the Authorization header without "Bearer"), as careless servers do: for redaction tests. */
  echoAuthorization: boolean;
  /** Started with --embeddings: /v1/embeddings serves, /completion answers 501. */
  embeddings: boolean;
  /** Started with --reranking (which turns embeddings on with rank pooling): /rerank serves, /completion answers 501. */
  reranking: boolean;
  /** --pooling none: /v1/embeddings answers 400, per-token vectors being no OpenAI answer. */
  poolingNone: boolean;
  /** Length of the embedding vectors. */
  embeddingDims: number;
  /** "document": rerank results in document order, as builds before the sort by score answered. */
  rerankOrder: "score" | "document";
  /** Time /v1/embeddings and /rerank take before answering (the engine computing). */
  poolingDelayMs: number;
  /** Started with --slot-save-path: POST /slots/{id}?action=erase works (else 501, like every slot action). */
  slotSavePath: boolean;
  /** POST /apply-template renders chats (a ChatML template); false: 404, like builds before the endpoint. */
  applyTemplate: boolean;
}

export const FAKE_LLAMACPP_DEFAULTS: FakeLlamaCppBehaviour = {
  tokens: ["Once", " upon", " a", " time", ",", " there", " was", " a", " llama", "."],
  stopType: "eos",
  frameDelayMs: 0,
  chunkBytes: 0,
  splitDelayMs: 2,
  health: "ready",
  totalSlots: 1,
  ctx: 4096,
  buildInfo: "b4000-abc123",
  modelPath: "/models/tiny-llama-Q4_K_M.gguf",
  slotsEndpoint: true,
  metrics: true,
  echoAuthorization: false,
  embeddings: false,
  reranking: false,
  poolingNone: false,
  embeddingDims: 8,
  rerankOrder: "score",
  poolingDelayMs: 0,
  slotSavePath: false,
  applyTemplate: true,
};

export interface FakeLlamaCpp {
  url: string;
  port: number;
  /** Every request in arrival order, polls included; streaming ones are updated as they progress. */
  requests: FakeRequest[];
  /** Only the POST /completion requests. */
  generations(): FakeRequest[];
  /** Only the POSTs to the embeddings and rerank routes. */
  poolingRequests(): FakeRequest[];
  /** Only the POST /slots/{id}?action=... requests (`path` is "/slots/{id}"). */
  slotActions(): FakeRequest[];
  behaviour(): FakeLlamaCppBehaviour;
  /** Changes behaviour for requests that arrive from now on. */
  setBehaviour(patch: Partial<FakeLlamaCppBehaviour>): void;
  /** Stops listening and drops every connection, streams in progress included, like a crashed engine. */
  close(): Promise<void>;
}

export interface FakeLlamaCppOptions extends Partial<FakeLlamaCppBehaviour> {
  /** 0 (default) for an ephemeral port; a previous fake's port to bring it "back up". */
  port?: number;
}

const PUBLIC_PATHS = new Set(["/health", "/v1/health", "/models", "/v1/models"]);
const EMBEDDING_PATHS = new Set(["/v1/embeddings"]);
const RERANK_PATHS = new Set(["/reranking", "/rerank", "/v1/rerank", "/v1/reranking"]);

export async function startFakeLlamaCpp(options: FakeLlamaCppOptions = {}): Promise<FakeLlamaCpp> {
  const { port: wantedPort = 0, ...patch } = options;
  let behaviour: FakeLlamaCppBehaviour = { ...FAKE_LLAMACPP_DEFAULTS, ...patch };
  const requests: FakeRequest[] = [];
  const slotTable = new FakeSlots(() => behaviour.totalSlots);
  const totals: FakeTotals = { promptTokens: 0, predicted: 0, maxTokens: 0 };

  const server = http.createServer((req, res) => {
    res.on("error", () => {});
    void readBody(req).then((raw) => {
      const path = (req.url ?? "/").split("?")[0]!;
      const record: FakeRequest = {
        method: req.method ?? "GET",
        path,
        headers: req.headers,
        body: undefined,
        closedByClient: false,
        finished: false,
      };
      requests.push(record);
      const b = behaviour;
      if (raw !== "") {
        try {
          record.body = JSON.parse(raw);
        } catch {
          return sendError(res, 400, "Invalid JSON body", "invalid_request_error");
        }
      }
      route(req, res, record, b);
    });
  });

  function route(req: http.IncomingMessage, res: http.ServerResponse, record: FakeRequest, b: FakeLlamaCppBehaviour): void {
    const { path, method } = record;
    // The bare key, without "Bearer": what a careless server echoes, and what a bearer-token pattern alone would miss.
    const echo = b.echoAuthorization ? ` (key: ${(req.headers.authorization ?? "none").replace(/^Bearer\s+/i, "")})` : "";
    if (b.health === "down") return sendError(res, 500, `Model failed to load${echo}`, "server_error");
    if (path === "/health" || path === "/v1/health") {
      if (b.health === "loading") return sendError(res, 503, "Loading model", "unavailable_error");
      return sendJson(res, 200, { status: "ok" });
    }
    if (b.health === "loading") return sendError(res, 503, "Loading model", "unavailable_error");
    if (b.apiKey !== undefined && !PUBLIC_PATHS.has(path) && req.headers.authorization !== `Bearer ${b.apiKey}`) {
      return sendError(res, 401, `Invalid API Key${echo}`, "authentication_error");
    }
    if (method === "GET" && path === "/props") return sendJson(res, 200, props(b));
    if (method === "GET" && path === "/slots") {
      if (!b.slotsEndpoint)
        return sendError(res, 501, "This server does not support slots endpoint. Start it with `--slots`", "not_supported_error");
      return sendJson(res, 200, slots(b, slotTable));
    }
    if (method === "GET" && path === "/metrics") {
      if (!b.metrics)
        return sendError(res, 501, "This server does not support metrics endpoint. Start it with `--metrics`", "not_supported_error");
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(metricsText(b, slotTable, totals));
      return;
    }
    if (method === "POST" && (path === "/completion" || path === "/completions")) {
      if (b.embeddings || b.reranking)
        return sendError(res, 501, "This server does not support completions. Start it without `--embeddings`", "not_supported_error");
      void complete(res, record, b, echo);
      return;
    }
    if (method === "POST" && path === "/apply-template") {
      if (!b.applyTemplate) return sendError(res, 404, "File Not Found", "not_found_error");
      const rendered = chatMlPrompt(record.body);
      return rendered === undefined ? sendError(res, 400, "'messages' is required", "invalid_request_error") : sendJson(res, 200, rendered);
    }
    if (method === "POST" && (EMBEDDING_PATHS.has(path) || RERANK_PATHS.has(path))) return pooled(res, record, b, echo);
    if (method === "POST" && path.startsWith("/slots/")) return void slotAction(req, res, record, b, slotTable);
    sendError(res, 404, "File Not Found", "not_found_error");
  }

  async function complete(res: http.ServerResponse, record: FakeRequest, b: FakeLlamaCppBehaviour, echo: string): Promise<void> {
    const body = (record.body ?? {}) as { prompt?: unknown; n_predict?: unknown; id_slot?: unknown; stop?: unknown };
    if (typeof body.prompt !== "string" && !Array.isArray(body.prompt)) return refuse(res, record, 400, '"prompt" must be provided');
    if (b.failBefore) return refuse(res, record, b.failBefore.status, b.failBefore.message + echo, b.failBefore.type);
    const nPredict = typeof body.n_predict === "number" && body.n_predict >= 0 ? body.n_predict : Infinity;
    // The server holds back text that may start a stop string and never sends the stop string itself.
    const plan = cutAtStop(b.tokens, stopsOf(body.stop), false);
    const count = Math.min(plan.tokens.length, nPredict);
    const promptTokens = typeof body.prompt === "string" ? wordCount(body.prompt) : body.prompt.length;
    let open = true;
    // Ends this stream's pauses (and a wait for its slot) when the client leaves, so a closed fake leaves no timers behind.
    const gone = new AbortController();
    const pause = (ms: number): Promise<void> => sleep(ms, undefined, { signal: gone.signal }).catch(() => {});
    let sent = 0;
    res.on("close", () => {
      open = false;
      gone.abort();
      if (!res.writableEnded) record.closedByClient = true;
    });
    // A pinned slot that is busy (or does not exist) defers the task: no answer until it is free.
    const slot = await slotTable.acquire(typeof body.id_slot === "number" ? body.id_slot : -1, gone.signal);
    if (slot === undefined) return;
    // What the slot holds once the stream ends: the prompt and every token generated into it.
    res.on("close", () => slotTable.release(slot, promptTokens + sent));
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    totals.promptTokens += promptTokens;
    const send = frameWriter(res, b, () => open, pause);
    const t0 = performance.now();
    for (let i = 0; i <= count; i++) {
      if (!open) return;
      if (b.failAfter && i === b.failAfter.tokens) {
        const code = b.failAfter.code ?? 500;
        await send({ error: { code, message: b.failAfter.message + echo, type: b.failAfter.type ?? errorType(code) } });
        record.finished = true;
        res.end();
        return;
      }
      if (b.hangAfter !== undefined && i === b.hangAfter) return; // left open until the client gives up
      if (i === count) break;
      if (i > 0 && b.frameDelayMs > 0) await pause(b.frameDelayMs);
      if (!open) return;
      totals.predicted++;
      sent++;
      await send(tokenFrame(plan.tokens[i]!, i, promptTokens));
    }
    if (!open) return;
    const predictedMs = performance.now() - t0;
    totals.maxTokens = Math.max(totals.maxTokens, promptTokens + count);
    const stoppingWord = count < nPredict ? plan.matched : undefined;
    await send(finalFrame(b, { prompt: body.prompt, slot, promptTokens, count, nPredict, predictedMs, stoppingWord }));
    record.finished = true;
    res.end();
  }

  /** An error answer that ends the request. */
  function refuse(res: http.ServerResponse, record: FakeRequest, status: number, message: string, type?: string): void {
    record.finished = true;
    sendError(res, status, message, type ?? errorType(status));
  }

  /** POST /v1/embeddings or /rerank: refused as the server refuses, else answered whole after poolingDelayMs. */
  function pooled(res: http.ServerResponse, record: FakeRequest, b: FakeLlamaCppBehaviour, echo: string): void {
    const rerank = RERANK_PATHS.has(record.path);
    const body = (record.body ?? {}) as { input?: unknown; query?: unknown; documents?: unknown; top_n?: unknown };
    const refuse = (status: number, message: string, type: string): void => {
      record.finished = true;
      sendError(res, status, message, type);
    };
    if (rerank && !b.reranking)
      return refuse(501, "This server does not support reranking. Start it with `--reranking`", "not_supported_error");
    if (!rerank && !(b.embeddings || b.reranking))
      return refuse(501, "This server does not support embeddings. Start it with `--embeddings`", "not_supported_error");
    if (!rerank && b.poolingNone)
      return refuse(400, "Pooling type 'none' is not OAI compatible. Please use a different pooling type", "invalid_request_error");
    const texts = rerank ? body.documents : typeof body.input === "string" ? [body.input] : body.input;
    if (rerank && typeof body.query !== "string") return refuse(400, '"query" must be provided', "invalid_request_error");
    if (!Array.isArray(texts) || texts.length === 0 || !texts.every((x) => typeof x === "string"))
      return refuse(
        400,
        rerank ? '"documents" must be a non-empty string array' : '"input" or "content" must be provided',
        "invalid_request_error",
      );
    if (b.failBefore) return refuse(b.failBefore.status, b.failBefore.message + echo, b.failBefore.type ?? errorType(b.failBefore.status));
    res.on("close", () => {
      if (!res.writableEnded) record.closedByClient = true;
    });
    answerAfter(res, b.poolingDelayMs, () => {
      record.finished = true;
      if (!rerank) return sendJson(res, 200, embeddingsAnswer(texts, b));
      const query = body.query as string;
      const topN = typeof body.top_n === "number" ? body.top_n : texts.length;
      sendJson(res, 200, rerankAnswer(query, texts, topN, b));
    });
  }

  const bound = await listen(server, wantedPort);
  return {
    ...bound,
    requests,
    generations: () => requests.filter((r) => r.method === "POST" && (r.path === "/completion" || r.path === "/completions")),
    poolingRequests: () => requests.filter((r) => r.method === "POST" && (EMBEDDING_PATHS.has(r.path) || RERANK_PATHS.has(r.path))),
    slotActions: () => requests.filter((r) => r.method === "POST" && r.path.startsWith("/slots/")),
    behaviour: () => behaviour,
    setBehaviour(p) {
      behaviour = { ...behaviour, ...p };
    },
    close: () => closeServer(server),
  };
}
