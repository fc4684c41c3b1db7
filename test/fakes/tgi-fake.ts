// A fake Hugging Face Text Generation Inference server (node:http) that
// speaks TGI's HTTP API closely enough to test the TGI adapter and, later,
// the whole stack (edge -> core -> sidecar -> this fake) against it.
//
// Sources (huggingface/text-generation-inference):
// - docs/openapi.json (2.4.x): POST /generate_stream takes GenerateRequest
//   {inputs, parameters: {max_new_tokens, seed, details, do_sample, ...}} and
//   answers text/event-stream StreamResponse frames {index, token: {id, text,
//   logprob, special}, generated_text, details}; the last frame carries
//   generated_text and StreamDetails {finish_reason: "length" | "eos_token" |
//   "stop_sequence", generated_tokens, input_length, seed}. ErrorResponse is
//   {error, error_type}, documented with 422 (validation), 424 (generation),
//   429 (overloaded) and 500 (incomplete generation). GET /health: 200, or 503
//   {"error":"unhealthy","error_type":"healthcheck"}. GET /info: Info {model_id,
//   model_sha, max_concurrent_requests, max_input_tokens, max_total_tokens,
//   version, ...}.
// - router/src/server.rs: generate_stream answers 200 and its SSE headers at
//   once and reports every InferError (validation, overloaded, generation) as
//   one `data:{"error":...,"error_type":...}` frame inside the stream
//   (`impl From<InferError> for Event`), then ends it; frames are axum
//   `Event::json_data`, i.e. `data:{json}\n\n` (no space after the colon),
//   with keep-alive comments while idle (axum KeepAlive, every 15 s). With
//   --api-key the generation routes, not /health or /info, answer 401 with
//   an empty body to a wrong or missing "Authorization: Bearer <key>".
// - router/src/infer.rs: error_type is "validation", "overloaded",
//   "generation" or "incomplete_generation"; messages read e.g. "Input
//   validation error: ...", "Model is overloaded", "Request failed during
//   generation: ...".
// - router/src/validation.rs: max_new_tokens 0 and empty inputs are
//   validation errors.
// TGI before 2.0 sent StreamDetails without input_length (detailsStyle "v1").
//
// - GenerateParameters' sampling fields are recorded with the request, not
//   applied, except `stop`: the stream ends with the token that completes the
//   first stop sequence, which TGI sends along ("The capital city of France
//   is Par" for stop "Par", text-generation-inference#332), finish_reason
//   "stop_sequence".
// - The Messages API (POST /v1/chat/completions, tgi-fake-chat.ts).
//
// What the fake does NOT model: tokenization (a token is whatever text the
// behaviour lists; input_length counts the prompt's whitespace-separated
// words), sampling (seed is echoed in details), batching.
import http from "node:http";
import { closeServer, listen, readBody, sendJson, type FakeRequest } from "./fake-http.js";
import { cutAtStop, stopsOf } from "./fake-stops.js";
import { CHAT_PATH, chatChunk, chatStream, chatUsage, wordsOf, type PlannedToken, type StreamRequest } from "./tgi-fake-chat.js";
import { FrameWriter } from "./tgi-fake-frames.js";

export type TgiFakeHealth = "ready" | "loading" | "down";

export interface TgiFakeBehaviour {
  /** Texts of the tokens every generation produces, in order; it stops earlier at max_new_tokens ("length"). */
  tokens: string[];
  /**
   * How a generation that runs out of `tokens` before max_new_tokens ends:
   * "eos_token" sends one more frame with the special token "</s>" (as TGI
   * does: the EOS token is streamed, flagged special), "stop_sequence" ends
   * on the last listed token.
   */
  finish: "eos_token" | "stop_sequence";
  /** Pause before each token frame. */
  frameDelayMs: number;
  /**
   * Write each frame in pieces of this many bytes with a short pause between
   * them, so frames, lines and UTF-8 characters straddle TCP chunks; 0 writes
   * whole frames.
   */
  chunkBytes: number;
  /** Write a generation's frames in one write (one TCP chunk), ignoring frameDelayMs and chunkBytes. */
  burst: boolean;
  /** Answer /generate_stream with this status and an ErrorResponse body, before any stream. */
  failBefore?: { status: number; error?: string; errorType?: string };
  /** After this many token frames, send an in-stream ErrorResponse frame and end the stream (0: before any token). */
  failAfter?: { tokens: number; error?: string; errorType?: string };
  /** After this many token frames, send nothing more (but keep-alives) until the client closes. */
  hangAfter?: number;
  /** Send an SSE keep-alive comment (":") this often while a stream is open; 0: never. */
  keepAliveMs: number;
  /**
   * "ready": GET /health answers 200. "loading": 503 with TGI's unhealthy
   * body (TGI's answer while its shards cannot serve). "down": every request's
   * socket is destroyed unanswered (a dying process; close() for a gone one).
   */
  health: TgiFakeHealth;
  /** Fields merged over the default GET /info body; a field set to undefined is left out. */
  info: Record<string, unknown>;
  /** "v2": StreamDetails with input_length (TGI >= 2.0); "v1": without it. */
  detailsStyle: "v1" | "v2";
  /** Like `--api-key`: generation routes then require "Authorization: Bearer <apiKey>". */
  apiKey?: string;
}

export interface TgiFake {
  url: string;
  port: number;
  /** Every request, oldest first. */
  requests: FakeRequest[];
  /** The /generate_stream and /v1/chat/completions requests, oldest first. */
  generations(): FakeRequest[];
  /** TCP connections accepted so far (keep-alive reuse shows as fewer connections than requests). */
  connections(): number;
  /** Merges into the behaviour for requests that arrive from now on (a stream already running keeps its own). */
  setBehaviour(change: Partial<TgiFakeBehaviour>): void;
  behaviour(): TgiFakeBehaviour;
  /** Stops listening and drops every connection, like a killed process. */
  close(): Promise<void>;
}

export interface TgiFakeOptions extends Partial<TgiFakeBehaviour> {
  /** Default 0 (ephemeral); pass a closed fake's port to "restart" it. */
  port?: number;
}

export const TGI_FAKE_DEFAULT_INFO: Readonly<Record<string, unknown>> = {
  model_id: "fake-org/tiny-llama",
  model_sha: "e985a63cdc139290c5f700ff1929f0b5942cced2",
  model_dtype: "torch.float16",
  model_device_type: "cuda",
  model_pipeline_tag: "text-generation",
  max_concurrent_requests: 128,
  max_best_of: 2,
  max_stop_sequences: 4,
  max_input_tokens: 4095,
  max_total_tokens: 4096,
  validation_workers: 2,
  max_client_batch_size: 4,
  router: "text-generation-router",
  version: "2.4.1",
  sha: "9dbc1e9f2ea1bb1e3a0ff3d2f3f0d8c9c2a6b7e1",
  docker_label: null,
};

export const TGI_FAKE_DEFAULTS: TgiFakeBehaviour = {
  tokens: ["Hello", ",", " wor", "ld", " — ", "naïve", " 日本語", " 🦙", "!"],
  finish: "eos_token",
  frameDelayMs: 0,
  chunkBytes: 0,
  burst: false,
  keepAliveMs: 0,
  health: "ready",
  info: {},
  detailsStyle: "v2",
};

export async function startFakeTgi(opts: TgiFakeOptions = {}): Promise<TgiFake> {
  const { port = 0, ...initial } = opts;
  let behaviour: TgiFakeBehaviour = { ...TGI_FAKE_DEFAULTS, ...initial };
  const requests: FakeRequest[] = [];
  let connections = 0;

  const server = http.createServer((req, res) => {
    const current = behaviour;
    const record: FakeRequest = {
      method: req.method ?? "",
      path: (req.url ?? "").split("?")[0]!,
      headers: req.headers,
      body: undefined,
      closedByClient: false,
      finished: false,
    };
    requests.push(record);
    if (current.health === "down") {
      req.socket.destroy();
      return;
    }
    res.on("finish", () => (record.finished = true));
    res.on("close", () => {
      if (!record.finished) record.closedByClient = true;
    });
    void readBody(req).then((raw) => {
      try {
        record.body = raw === "" ? undefined : JSON.parse(raw);
      } catch {
        record.body = undefined;
      }
      void route(record, raw, current, res).catch(() => res.destroy());
    });
  });
  server.on("connection", (socket) => {
    // Small writes must leave at once, or Nagle would merge the pieces chunkBytes asks for.
    socket.setNoDelay(true);
    connections++;
  });
  const bound = await listen(server, port);

  return {
    ...bound,
    requests,
    generations: () => requests.filter((r) => r.path === "/generate_stream" || r.path === CHAT_PATH),
    connections: () => connections,
    setBehaviour(change) {
      behaviour = { ...behaviour, ...change };
    },
    behaviour: () => behaviour,
    close: () => closeServer(server),
  };
}

async function route(record: FakeRequest, raw: string, b: TgiFakeBehaviour, res: http.ServerResponse): Promise<void> {
  const key = `${record.method} ${record.path}`;
  if (key === "GET /health") {
    if (b.health === "ready") res.writeHead(200).end();
    else sendJson(res, 503, { error: "unhealthy", error_type: "healthcheck" });
    return;
  }
  if (key === "GET /info") {
    sendJson(res, 200, { ...TGI_FAKE_DEFAULT_INFO, ...b.info });
    return;
  }
  if (key !== "POST /generate_stream" && key !== `POST ${CHAT_PATH}`) {
    res.writeHead(404).end();
    return;
  }
  if (b.apiKey !== undefined && record.headers.authorization?.toLowerCase() !== `bearer ${b.apiKey}`.toLowerCase()) {
    res.writeHead(401).end();
    return;
  }
  if (record.body === undefined || typeof record.body !== "object") {
    // axum's Json extractor rejection: plain text, before any handler runs.
    res
      .writeHead(422, { "content-type": "text/plain; charset=utf-8" })
      .end(`Failed to deserialize the JSON body into the target type: ${raw.slice(0, 80)}`);
    return;
  }
  if (b.failBefore) {
    sendJson(res, b.failBefore.status, {
      error: b.failBefore.error ?? "Request failed during generation",
      error_type: b.failBefore.errorType ?? "generation",
    });
    return;
  }
  const request = record.path === CHAT_PATH ? chatStream(record.body) : generateStream(record.body as GenerateRequest);
  await stream(request, b, res);
}

interface GenerateRequest {
  inputs?: unknown;
  parameters?: { max_new_tokens?: unknown; seed?: unknown; details?: unknown; stop?: unknown };
}

const DEFAULT_MAX_NEW_TOKENS = 100;

function generateStream(body: GenerateRequest): StreamRequest {
  const p = body.parameters;
  const seed = typeof p?.seed === "number" ? p.seed : null;
  const inputs = typeof body.inputs === "string" ? body.inputs : "";
  return { inputs, maxNew: p?.max_new_tokens ?? DEFAULT_MAX_NEW_TOKENS, seed, details: p?.details !== false, stops: stopsOf(p?.stop) };
}

async function stream(req: StreamRequest, b: TgiFakeBehaviour, res: http.ServerResponse): Promise<void> {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" });
  res.flushHeaders();
  const out = new FrameWriter(res, b);
  try {
    const { inputs, maxNew, seed } = req;
    // Validation happens inside the stream in TGI, so its errors arrive as frames of a 200 response.
    if (inputs === "") return await out.finalError("Input validation error: `inputs` cannot be empty", "validation");
    if (typeof maxNew !== "number" || maxNew <= 0)
      return await out.finalError("Input validation error: `max_new_tokens` must be strictly positive", "validation");

    const frames = planFrames(b, maxNew, req.stops);
    let index = 0;
    let text = "";
    for (const token of frames.tokens) {
      if (b.failAfter && index >= b.failAfter.tokens)
        return await out.finalError(
          b.failAfter.error ?? "Request failed during generation: Server error: CUDA out of memory",
          b.failAfter.errorType ?? "generation",
        );
      if (b.hangAfter !== undefined && index >= b.hangAfter) return await out.hang();
      index++;
      if (!token.special) text += token.text;
      const last = index === frames.tokens.length;
      if (req.chat) {
        await out.frame(chatChunk(token, last ? frames.finishReason : null, b), b.frameDelayMs);
        continue;
      }
      const details = last && req.details ? streamDetails(b, frames.finishReason, index, inputs, seed) : null;
      const wireToken = { id: 1000 + index, text: token.text, logprob: -0.25, special: token.special };
      await out.frame({ index, token: wireToken, generated_text: last ? text : null, details }, b.frameDelayMs);
    }
    if (req.chat?.includeUsage) await out.frame(chatUsage(wordsOf(inputs), index, b), 0);
    if (req.chat) await out.frame("[DONE]", 0);
    out.end();
  } finally {
    out.dispose();
  }
}

function planFrames(b: TgiFakeBehaviour, maxNew: number, stops: readonly string[]): { tokens: PlannedToken[]; finishReason: string } {
  // TGI sends the token that completes a stop sequence, stop sequence and all.
  const plan = cutAtStop(b.tokens, stops, true);
  const listed = plan.tokens.map((text) => ({ text, special: false }));
  if (listed.length >= maxNew) return { tokens: listed.slice(0, maxNew), finishReason: "length" };
  if ((plan.matched !== undefined || b.finish === "stop_sequence") && listed.length > 0)
    return { tokens: listed, finishReason: "stop_sequence" };
  return { tokens: [...listed, { text: "</s>", special: true }], finishReason: "eos_token" };
}

function streamDetails(
  b: TgiFakeBehaviour,
  finishReason: string,
  generated: number,
  inputs: string,
  seed: number | null,
): Record<string, unknown> {
  const details: Record<string, unknown> = { finish_reason: finishReason, generated_tokens: generated, seed };
  if (b.detailsStyle === "v2") details.input_length = wordsOf(inputs);
  return details;
}
