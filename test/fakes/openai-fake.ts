// A protocol-faithful fake of an OpenAI-compatible server, in two flavours:
// plain OpenAI-compatible ("openai") and vLLM ("vllm"), with fault injection
// for adapter tests and end-to-end runs (edge -> core -> sidecar -> this fake).
//
// What it imitates, and where that comes from:
// - Streaming completions and chat (`POST /v1/completions`, `POST
//   /v1/chat/completions` with `stream: true`): SSE `data: {json}` frames,
//   `object` "text_completion" with `choices[0].text`, or
//   "chat.completion.chunk" with `choices[0].delta.content` after a first
//   role-only delta; `finish_reason` "length"|"stop" on the last choice; with
//   `stream_options.include_usage` a last chunk with `choices: []` and
//   `usage {prompt_tokens, completion_tokens, total_tokens}`; then `data: [DONE]`.
//   OpenAI API reference (platform.openai.com/docs/api-reference/completions,
//   /chat/streaming); vLLM "OpenAI-Compatible Server"
//   (https://docs.vllm.ai/en/v0.6.6/serving/openai_compatible_server.html,
//   https://docs.vllm.ai/en/v0.8.1/serving/openai_compatible_server.html), and
//   vllm/entrypoints/openai/protocol.py (StreamOptions, UsageInfo, ModelCard).
//   vLLM puts finish_reason on the chunk of the last token; OpenAI sends a
//   separate empty chunk for it. Each flavour does what its server does.
// - Sampling (OpenAI's temperature, top_p, presence/frequency_penalty, stop,
//   logit_bias, response_format; vLLM's extra top_k, min_p,
//   repetition_penalty, protocol.py): recorded with the request, not applied
//   (no model), except `stop`: the stream ends before the first stop string,
//   which is not sent, with finish_reason "stop"; vLLM adds `stop_reason`,
//   the string that matched (null when the model ended by itself).
// - Errors before the stream: OpenAI `{"error":{"message","type","param","code"}}`;
//   vLLM 0.6 `{"object":"error","message","type","param","code"}` (its
//   ErrorResponse; newer vLLM nests it under "error" like OpenAI).
// - Errors inside the stream: vLLM's create_streaming_error_response writes
//   `data: {"error": {...ErrorResponse}}` and then `data: [DONE]`
//   (vllm/entrypoints/openai/serving_engine.py); the openai flavour writes the
//   OpenAI-style error object and ends the body.
// - `GET /v1/models` -> `{"object":"list","data":[{"id",...}]}`; vLLM's cards
//   add `max_model_len` (protocol.py ModelCard).
// - vLLM only: `GET /health` (200, empty body, when the engine is alive),
//   `GET /version` -> `{"version": "0.6.3"}` (api_server.py show_version),
//   `GET /metrics` Prometheus text with `vllm:num_requests_running`,
//   `vllm:num_requests_waiting` and `vllm:kv_cache_usage_perc` (older
//   releases: `vllm:gpu_cache_usage_perc`), labelled `{model_name="..."}`
//   (https://docs.vllm.ai/en/stable/usage/metrics/,
//   https://docs.vllm.ai/en/v0.5.5/serving/metrics.html).
// - vLLM only, pooling models (docs "OpenAI-Compatible Server": Embeddings
//   API "only applicable to embedding models (--task embed)", Re-rank API on
//   `/rerank`, `/v1/rerank`, `/v2/rerank` for "--task score" models; the
//   server registers a task's routes only when the model runs it
//   (entrypoints register_pooling_api_routers), so others answer 404):
//   `POST /v1/embeddings` {model, input} -> protocol.py EmbeddingResponse
//   `{id, object: "list", created, model, data: [{index, object: "embedding",
//   embedding}], usage: {prompt_tokens, total_tokens, completion_tokens}}`;
//   `POST /v1/rerank` {model, query, documents, top_n (0: all)} ->
//   RerankResponse `{id, model, usage: {prompt_tokens, total_tokens},
//   results: [{index, document: {text}, relevance_score}]}`, "sorted by
//   relevance, and the index property can be used to determine original
//   order". An embedding model also reranks (by cosine similarity).
// - `--api-key`: vLLM checks `Authorization: Bearer <key>` on /v1 paths only
//   and answers 401 `{"error": "Unauthorized"}`; OpenAI checks every path and
//   answers 401 invalid_api_key. This fake's openai flavour echoes the whole
//   key it received in that message (a careless gateway), so tests can prove
//   the adapter redacts it.
//
// Health states: "ready"; "loading" (503 on every route: a real vLLM is not
// listening yet while it loads, a gateway in front answers 503); "down"
// (500 on every route: the engine died behind its HTTP server). For a
// refused connection, close() the fake; start it again on the same `port`
// to simulate a restart.
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { closeServer, listen, readBody, sendJson } from "./fake-http.js";
import type { Json } from "../support/json.js";
import { answerAfter } from "./fake-pooling.js";
import { modelCards, now, vllmEmbeddings, vllmMetricsText, vllmRerank } from "./openai-fake-bodies.js";
import {
  FAKE_DEFAULTS,
  type FakeBehaviour,
  type FakeFlavour,
  type FakeOpenAi,
  type FakeOptions,
  type RecordedRequest,
} from "./openai-fake-behaviour.js";
import { ChunkFormat, SseWriter } from "./openai-fake-frames.js";
import { cutAtStop, stopsOf } from "./fake-stops.js";

export { FAKE_DEFAULTS } from "./openai-fake-behaviour.js";
export type { FakeBehaviour, FakeFlavour, FakeHealth, FakeOpenAi, FakeOptions, RecordedRequest } from "./openai-fake-behaviour.js";

const RERANK_ROUTES = new Set(["POST /rerank", "POST /v1/rerank", "POST /v2/rerank"]);

export function startFakeVllm(opts: Omit<FakeOptions, "flavour"> = {}): Promise<FakeOpenAi> {
  return startFakeOpenAi({ ...opts, flavour: "vllm" });
}

export async function startFakeOpenAi(opts: FakeOptions = {}): Promise<FakeOpenAi> {
  const { flavour = "openai", port = 0, apiKey, ...overrides } = opts;
  const fake = new FakeOpenAiServer(flavour, apiKey, { ...FAKE_DEFAULTS, ...overrides });
  const { requests } = fake;
  const bound = await listen(fake.server, port);
  return {
    ...bound,
    flavour,
    requests,
    generations: () => requests.filter((r) => r.method === "POST" && (r.path === "/v1/completions" || r.path === "/v1/chat/completions")),
    poolingRequests: () =>
      requests.filter((r) => r.method === "POST" && (r.path === "/v1/embeddings" || RERANK_ROUTES.has(`POST ${r.path}`))),
    setBehaviour(changes) {
      fake.behaviour = { ...fake.behaviour, ...changes };
    },
    openStreams: () => fake.open,
    close: () => {
      fake.closing = true;
      return closeServer(fake.server);
    },
  };
}

/** The fake's state: what it was told to do, what it was asked, and its open streams. */
class FakeOpenAiServer {
  readonly requests: RecordedRequest[] = [];
  readonly server = http.createServer((req, res) => this.receive(req, res));
  /** Streams open now (vLLM's num_requests_running). */
  open = 0;
  /** Set by close(): the connections it drops were not closed by their clients. */
  closing = false;
  private seq = 0;
  /** Responses whose connection the fake destroyed itself (dropAfter): not closed by their clients either. */
  private readonly dropped = new WeakSet<http.ServerResponse>();

  constructor(
    private readonly flavour: FakeFlavour,
    private readonly apiKey: string | undefined,
    public behaviour: FakeBehaviour,
  ) {}

  private receive(req: http.IncomingMessage, res: http.ServerResponse): void {
    void readBody(req).then((raw) => {
      const b = this.behaviour;
      let finishEnded!: (r: RecordedRequest) => void;
      const record: RecordedRequest = {
        method: req.method ?? "GET",
        path: (req.url ?? "/").split("?")[0]!,
        headers: req.headers,
        body: undefined,
        streamed: false,
        closedByClient: false,
        finished: false,
        ended: new Promise((resolve) => (finishEnded = resolve)),
      };
      this.requests.push(record);
      res.on("close", () => {
        record.finished = res.writableFinished;
        if (!res.writableFinished && !this.closing && !this.dropped.has(res)) record.closedByClient = true;
        if (record.streamed) this.open--;
        finishEnded(record);
      });
      if (raw !== "") {
        try {
          record.body = JSON.parse(raw);
        } catch {
          return this.sendError(res, 400, "invalid JSON body", "BadRequestError");
        }
      }
      this.route(record, res, b);
    });
  }

  private sendError(res: http.ServerResponse, status: number, message: string, type?: string): void {
    const body =
      this.flavour === "vllm"
        ? { object: "error", message, type: type ?? "BadRequestError", param: null, code: status }
        : { error: { message, type: type ?? "invalid_request_error", param: null, code: null } };
    sendJson(res, status, body);
  }

  private route(r: RecordedRequest, res: http.ServerResponse, b: FakeBehaviour): void {
    const { flavour, apiKey } = this;
    const authorization = r.headers.authorization ?? "";
    const guarded = flavour === "openai" || r.path.startsWith("/v1");
    if (apiKey !== undefined && guarded && authorization !== `Bearer ${apiKey}`) {
      if (flavour === "vllm") {
        res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: "Unauthorized" }));
        return;
      }
      const received = authorization.replace(/^Bearer\s+/i, "");
      return this.sendError(res, 401, `Incorrect API key provided: ${received}.`, "invalid_request_error");
    }
    if (b.health === "loading") return this.sendError(res, 503, "the model is still loading", "ServiceUnavailableError");
    if (b.health === "down") return this.sendError(res, 500, "engine dead: the engine loop has stopped", "InternalServerError");

    const key = `${r.method} ${r.path}`;
    if (key === "GET /v1/models") return sendJson(res, 200, { object: "list", data: modelCards(flavour, b) });
    if (flavour === "vllm" && key === "GET /health") {
      res.writeHead(200).end();
      return;
    }
    if (flavour === "vllm" && key === "GET /version") return sendJson(res, 200, { version: b.version });
    if (flavour === "vllm" && key === "GET /metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(vllmMetricsText(b, this.open));
      return;
    }
    const generating = flavour === "openai" || b.task === "generate";
    if (generating && (key === "POST /v1/completions" || key === "POST /v1/chat/completions")) {
      void this.generate(r, res, b, key === "POST /v1/chat/completions");
      return;
    }
    if (flavour === "vllm" && b.task === "embed" && key === "POST /v1/embeddings") return this.pooled(r, res, b, false);
    if (flavour === "vllm" && b.task !== "generate" && RERANK_ROUTES.has(key)) return this.pooled(r, res, b, true);
    this.sendError(res, 404, `no route ${key}`, "NotFoundError");
  }

  /** vLLM's embeddings or rerank answer, whole, after poolingDelayMs. */
  private pooled(r: RecordedRequest, res: http.ServerResponse, b: FakeBehaviour, rerank: boolean): void {
    const body = (r.body ?? {}) as { model?: unknown; input?: unknown; query?: unknown; documents?: unknown; top_n?: unknown };
    if (typeof body.model === "string" && !b.models.includes(body.model)) {
      return this.sendError(res, 404, `The model \`${body.model}\` does not exist.`, "NotFoundError");
    }
    const texts = rerank ? body.documents : typeof body.input === "string" ? [body.input] : body.input;
    if ((rerank && typeof body.query !== "string") || !Array.isArray(texts) || !texts.every((x) => typeof x === "string")) {
      return this.sendError(
        res,
        400,
        rerank ? "query must be a string and documents a list of strings" : "input must be a string or a list of strings",
      );
    }
    if (b.failBefore) return this.sendError(res, b.failBefore.status, b.failBefore.message, b.failBefore.type);
    const model = typeof body.model === "string" ? body.model : b.models[0];
    answerAfter(res, b.poolingDelayMs, () => {
      if (!rerank) return sendJson(res, 200, vllmEmbeddings(model, texts, b.embeddingDims, ++this.seq));
      const topN = typeof body.top_n === "number" && body.top_n > 0 ? body.top_n : texts.length;
      sendJson(res, 200, vllmRerank(model, body.query as string, texts, topN, ++this.seq));
    });
  }

  /** A streamed completion or chat: one chunk per token, the flavour's finish, usage on request, [DONE]; or the fault `b` asks for. */
  private async generate(r: RecordedRequest, res: http.ServerResponse, b: FakeBehaviour, chat: boolean): Promise<void> {
    const body = (r.body ?? {}) as Record<string, Json>;
    if (this.refusedGeneration(res, body, b, chat)) return;
    const maxTokens = Number.isInteger(body.max_tokens) ? (body.max_tokens as number) : 16;
    // Both servers end before the first stop string and leave it out; only vLLM says which one matched.
    const plan = cutAtStop(b.tokens, stopsOf(body.stop), false);
    const texts = plan.tokens.slice(0, maxTokens);
    const finish = plan.tokens.length >= maxTokens ? "length" : plan.matched !== undefined ? "stop" : b.naturalFinish;
    const stopReason = finish === "stop" ? (plan.matched ?? null) : null;
    const promptText = chat
      ? (body.messages as { content?: string }[]).map((m) => String(m.content ?? "")).join(" ")
      : (body.prompt as string);
    const promptTokens = Math.max(1, promptText.split(/\s+/).filter(Boolean).length);
    const id = `${chat ? "chatcmpl" : "cmpl"}-fake${++this.seq}`;
    const model = typeof body.model === "string" ? body.model : b.models[0];
    const chunks = new ChunkFormat(this.flavour, chat, {
      id,
      object: chat ? "chat.completion.chunk" : "text_completion",
      created: now(),
      model,
    });

    r.streamed = true;
    this.open++;
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    res.flushHeaders();
    const out = new SseWriter(res, b);
    if (chat) await out.send(chunks.chunk(chunks.choice(undefined, null, true)));
    for (let i = 0; i < texts.length; i++) {
      if (await this.interrupt(out, b, i)) return;
      if (b.frameDelayMs > 0 && !b.coalesce) await sleep(b.frameDelayMs);
      if (out.gone()) return;
      // vLLM reports the finish on the last token's chunk.
      const last = i === texts.length - 1 && this.flavour === "vllm";
      await out.send(chunks.chunk(chunks.choice(texts[i], last ? finish : null, false, last ? stopReason : null)));
    }
    if (await this.interrupt(out, b, texts.length)) return;
    if (this.flavour === "openai" || texts.length === 0)
      await out.send(chunks.chunk(chunks.choice(chat ? undefined : "", finish, false, stopReason)));
    if (body.stream_options?.include_usage === true) {
      const usage = { prompt_tokens: promptTokens, completion_tokens: texts.length, total_tokens: promptTokens + texts.length };
      await out.send(chunks.usage(usage));
    }
    await out.send("data: [DONE]\n\n");
    out.flush();
    if (!out.gone()) res.end();
  }

  /** Answers the refusals a server gives before a stream starts; true when it refused. */
  private refusedGeneration(res: http.ServerResponse, body: Record<string, Json>, b: FakeBehaviour, chat: boolean): boolean {
    if (body.stream !== true) this.sendError(res, 400, "this fake only streams: set stream=true");
    else if (typeof body.model === "string" && !b.models.includes(body.model)) {
      this.sendError(res, 404, `The model \`${body.model}\` does not exist.`, "NotFoundError");
    } else if (chat ? !Array.isArray(body.messages) || body.messages.length === 0 : typeof body.prompt !== "string") {
      this.sendError(res, 400, chat ? "messages must be a non-empty list" : "prompt must be a string");
    } else if (b.failBefore) this.sendError(res, b.failBefore.status, b.failBefore.message, b.failBefore.type);
    else return false;
    return true;
  }

  /** The faults due before token `i` (or after the last one, i = texts.length); true when the stream must stop here. */
  private async interrupt(out: SseWriter, b: FakeBehaviour, i: number): Promise<boolean> {
    if (b.failAfter?.tokens === i) {
      const error =
        this.flavour === "vllm"
          ? { object: "error", message: b.failAfter.message, type: "InternalServerError", param: null, code: 500 }
          : { message: b.failAfter.message, type: "server_error", param: null, code: null };
      await out.send(`data: ${JSON.stringify({ error })}\n\n`);
      if (this.flavour === "vllm") await out.send("data: [DONE]\n\n");
      out.flush();
      if (!out.gone()) out.res.end();
      return true;
    }
    if (b.hangAfter === i) {
      out.flush();
      return true;
    }
    if (b.dropAfter === i) {
      out.flush();
      this.dropped.add(out.res);
      // Node sends writes made in one tick together on the next: let them leave before the connection dies.
      await sleep(20);
      out.res.socket?.destroy();
      return true;
    }
    return false;
  }
}
