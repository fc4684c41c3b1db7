// A fake NVIDIA Triton Inference Server serving one LLM model, for adapter
// tests and end-to-end tests (edge -> core -> sidecar -> this fake). It speaks
// the parts of Triton's HTTP API the Triton adapter uses, as documented and as
// Triton's own HTTP frontend implements them:
//
// - triton-inference-server/server docs/protocol/extension_generate.md:
//   `POST /v2/models/{model}[/versions/{v}]/generate_stream`, request
//   `{"text_input": ..., "parameters"?: {...}, <other keys>}`, SSE responses
//   `data: {"model_name","model_version","text_output",...}`, errors
//   `{"error": "..."}`; an error after the first response arrives inside the
//   stream with status 200 already sent.
// - triton-inference-server/server src/http_server.cc: GenerateRequestClass
//   (status line and headers sent with the model's FIRST response, each
//   response framed "data: <json>\n\n", an error response framed the same way;
//   a first response that is an error sets the status from it: HttpCodeFromError
//   INTERNAL 500, NOT_FOUND 404, UNAVAILABLE 503, UNSUPPORTED 501, else 400),
//   HandleGenerate (an unknown model fails before inference with 400 and a
//   JSON body; a request key that is not a model input becomes a request
//   parameter), HandleServerHealth / HandleModelReady (200 or 400; a model not
//   ready: 400 `{"error":"Model version not ready"}`).
// - kserve/kserve docs/predict-api/v2/required_api.md: `GET /v2/health/live`,
//   `GET /v2/health/ready`, `GET /v2/models/{m}/ready`, server metadata
//   `GET /v2` `{name, version, extensions}`, model metadata `GET /v2/models/{m}`
//   `{name, versions, platform, inputs, outputs}`.
// - Model inputs: NVIDIA/TensorRT-LLM triton_backend/all_models/
//   inflight_batcher_llm/ensemble/config.pbtxt ("trtllm": text_input,
//   max_tokens, stream, seed, return_num_input_tokens, the sampling inputs
//   top_k, top_p, temperature, repetition_penalty, presence_penalty,
//   frequency_penalty, guided_decoding_guide(_type), ... -> text_output,
//   num_input_tokens); the same file in earlier tensorrtllm_backend releases
//   ("trtllm-legacy": random_seed, top_k, top_p, temperature only, no token
//   counts); sampling inputs are recorded with the request, not applied; vLLM backend,
//   triton-inference-server/vllm_backend src/model.py and src/utils/request.py
//   ("vllm": text_input, stream, sampling_parameters (a JSON string),
//   exclude_input_in_output, return_finish_reason, return_num_input_tokens ->
//   text_output, finish_reason "None" until the last response, num_input_tokens).
//
// Approximations: the wording of Triton's "unknown model" and "missing input"
// messages, and the "down" health state (a server that is up but not live; a
// stopped server is better modelled by close()).
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { closeServer, listen, readBody, sendJson, type FakeRequest } from "./fake-http.js";
import { modelMetadata, requestSettings, requiredInputs, type TritonFakeLayout } from "./triton-fake-layouts.js";

export type { TritonFakeLayout } from "./triton-fake-layouts.js";

/** "loading": live, model not ready. "down": not live (health 400, everything else 503). */
export type TritonFakeHealth = "ready" | "loading" | "down";

export interface TritonFakeBehaviour {
  /** `text_output` of each streamed response, in order; the fake stops early at the request's max_tokens. */
  tokens: string[];
  /** Pause before each response frame (the first one too: Triton sends headers with it). */
  frameDelayMs: number;
  /** Write each frame in pieces of this many bytes (0: whole), pausing between pieces so they reach the client as separate TCP chunks. */
  splitBytes: number;
  /**
   * Fail before any token with this status and `{"error": error}` (Triton: the
   * request failed before inference began). With `sse`, the way Triton answers
   * when the model's first response is an error: the status from the error,
   * Content-Type text/event-stream and the body `data: {"error": ...}`.
   */
  failBefore?: { status: number; error: string; sse?: boolean };
  /** After this many tokens, send `data: {"error": error}` and end the response (status 200 already sent). */
  failAfter?: { tokens: number; error: string };
  /** After this many tokens, send nothing more and hold the connection. 0: not even the headers. */
  hangAfter?: number;
  health: TritonFakeHealth;
  serverVersion: string;
  /** The one model served; other names are unknown models. */
  modelName: string;
  modelVersions: string[];
  layout: TritonFakeLayout;
  /** `num_input_tokens` when the request asks for it; default: the whitespace-separated words of text_input. */
  inputTokens?: number;
}

export const TRITON_FAKE_DEFAULTS: TritonFakeBehaviour = {
  tokens: ["Hello", ",", " world", "!"],
  frameDelayMs: 0,
  splitBytes: 0,
  health: "ready",
  serverVersion: "2.50.0",
  modelName: "ensemble",
  modelVersions: ["1"],
  layout: "trtllm",
};

export interface TritonFakeRequest extends FakeRequest<Record<string, unknown> | undefined> {
  /** Token responses written so far. */
  tokensSent: number;
}

export interface TritonFake {
  url: string;
  port: number;
  /** Every request received, in arrival order (live: entries update as responses progress). */
  requests: TritonFakeRequest[];
  /** Only the generate_stream requests. */
  generations(): TritonFakeRequest[];
  /** Changes behaviour for requests from now on (a stream under way keeps its plan). */
  setBehaviour(patch: Partial<TritonFakeBehaviour>): void;
  /** Stops listening and drops every connection (a crash, as far as clients can tell). */
  close(): Promise<void>;
}

export interface TritonFakeOptions extends Partial<TritonFakeBehaviour> {
  /** Default 0 (ephemeral); pass a closed fake's port to restart "the same server". */
  port?: number;
  host?: string;
}

export async function startFakeTriton(opts: TritonFakeOptions = {}): Promise<TritonFake> {
  const { port = 0, host = "127.0.0.1", ...patch } = opts;
  let behaviour: TritonFakeBehaviour = { ...TRITON_FAKE_DEFAULTS, ...patch };
  let closing = false;
  const requests: TritonFakeRequest[] = [];

  const server = http.createServer((req, res) => {
    const entry: TritonFakeRequest = {
      method: req.method ?? "GET",
      path: (req.url ?? "/").split("?")[0]!,
      headers: req.headers,
      body: undefined,
      tokensSent: 0,
      closedByClient: false,
      finished: false,
    };
    requests.push(entry);
    res.on("finish", () => (entry.finished = true));
    res.on("close", () => {
      if (!entry.finished && !closing) entry.closedByClient = true;
    });
    void readBody(req).then((text) => {
      if (text !== "") {
        try {
          const parsed: unknown = JSON.parse(text);
          if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) entry.body = parsed as Record<string, unknown>;
        } catch {
          // left undefined: the handler answers 400 like Triton
        }
      }
      // A snapshot, so a setBehaviour during this response does not change its plan.
      void route(req, res, entry, { ...behaviour }, text).catch(() => res.destroy());
    });
  });

  const bound = await listen(server, port, host);

  return {
    ...bound,
    requests,
    generations: () => requests.filter((r) => r.method === "POST" && /\/generate_stream$/.test(r.path)),
    setBehaviour(p) {
      behaviour = { ...behaviour, ...p };
    },
    close() {
      closing = true;
      return closeServer(server);
    },
  };
}

const MODEL_PATH = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(?:\/(ready|generate|generate_stream))?$/;

async function route(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  entry: TritonFakeRequest,
  b: TritonFakeBehaviour,
  rawBody: string,
): Promise<void> {
  const path = (req.url ?? "/").split("?")[0]!;
  const method = req.method ?? "GET";
  if (path === "/v2/health/live" || path === "/v2/health/ready") {
    if (method !== "GET") return sendJson(res, 405, { error: "Method Not Allowed" });
    const ok = path.endsWith("live") ? b.health !== "down" : b.health === "ready";
    return empty(res, ok ? 200 : 400);
  }
  if (b.health === "down") return sendJson(res, 503, { error: "Server is not live" });
  if (path === "/v2") {
    return sendJson(res, 200, {
      name: "triton",
      version: b.serverVersion,
      extensions: [
        "classification",
        "sequence",
        "model_repository",
        "schedule_policy",
        "model_configuration",
        "system_shared_memory",
        "cuda_shared_memory",
        "binary_tensor_data",
        "parameters",
        "statistics",
        "trace",
        "logging",
      ],
    });
  }
  const m = MODEL_PATH.exec(path);
  if (!m) return sendJson(res, 404, { error: "Not Found" });
  const model = decodeURIComponent(m[1]!);
  const kind = m[3] ?? "";
  if (model !== b.modelName) return sendJson(res, 400, { error: `Request for unknown model: '${model}' is not found` });
  const ready = b.health === "ready";
  if (kind === "ready") return ready ? empty(res, 200) : sendJson(res, 400, { error: "Model version not ready" });
  if (!ready)
    return sendJson(res, 400, {
      error: `Request for unknown model: '${model}' version ${b.modelVersions[0] ?? "1"} is not at ready state`,
    });
  if (kind === "") return sendJson(res, 200, modelMetadata(b));
  if (kind === "generate") return sendJson(res, 501, { error: "the fake implements generate_stream only" });
  if (method !== "POST") return sendJson(res, 405, { error: "Method Not Allowed" });
  if (entry.body === undefined)
    return sendJson(res, 400, {
      error: rawBody === "" ? "request body is empty" : "failed to parse the request JSON buffer: Invalid value.",
    });
  const missing = requiredInputs(b.layout).filter((name) => !(name in entry.body!));
  if (missing.length > 0) {
    return sendJson(res, 400, {
      error: `[request id: <id_unknown>] missing required input(s) ${missing.map((n) => `'${n}'`).join(", ")} for model '${model}'`,
    });
  }
  return generateStream(res, entry, b);
}

async function generateStream(res: http.ServerResponse, entry: TritonFakeRequest, b: TritonFakeBehaviour): Promise<void> {
  const body = entry.body!;
  if (b.failBefore) {
    if (!b.failBefore.sse) return sendJson(res, b.failBefore.status, { error: b.failBefore.error });
    res.writeHead(b.failBefore.status, { "content-type": "text/event-stream; charset=utf-8" });
    await writeFrame(res, `data: ${JSON.stringify({ error: b.failBefore.error })}\n\n`, b.splitBytes);
    return void res.end();
  }
  const settings = requestSettings(body, b.layout);
  const limit = settings.maxTokens > 0 ? Math.min(b.tokens.length, settings.maxTokens) : b.tokens.length;
  const askInputTokens = body.return_num_input_tokens === true && b.layout !== "trtllm-legacy";
  const askFinishReason = body.return_finish_reason === true && b.layout === "vllm";
  const inputTokens =
    b.inputTokens ??
    Math.max(
      1,
      String((body.text_input as string | undefined) ?? "")
        .split(/\s+/)
        .filter(Boolean).length,
    );
  const version = b.modelVersions[0] ?? "1";
  const response = (text: string, last: boolean): Record<string, unknown> => {
    const out: Record<string, unknown> = { model_name: b.modelName, model_version: version, text_output: text };
    if (b.layout !== "vllm") Object.assign(out, { batch_index: 0, sequence_index: 0, cum_log_probs: 0.0 });
    if (askInputTokens) out.num_input_tokens = inputTokens;
    if (askFinishReason) out.finish_reason = last ? (limit < b.tokens.length ? "length" : "stop") : "None";
    return out;
  };

  const gone = (): boolean => entry.closedByClient || res.destroyed;
  let headersSent = false;
  const sendHeaders = (): void => {
    if (headersSent) return;
    headersSent = true;
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" });
  };

  if (settings.stream === false) {
    // Not streaming: one response with the whole text, still framed as SSE by generate_stream.
    if (b.frameDelayMs > 0) await sleep(b.frameDelayMs);
    sendHeaders();
    entry.tokensSent = limit;
    await writeFrame(res, `data: ${JSON.stringify(response(b.tokens.slice(0, limit).join(""), true))}\n\n`, b.splitBytes);
    return void res.end();
  }

  for (let i = 0; i < limit; i++) {
    if (b.hangAfter !== undefined && i >= b.hangAfter) return hold(res);
    if (b.failAfter && i >= b.failAfter.tokens) break;
    if (b.frameDelayMs > 0) await sleep(b.frameDelayMs);
    if (gone()) return;
    sendHeaders();
    await writeFrame(res, `data: ${JSON.stringify(response(b.tokens[i]!, i === limit - 1))}\n\n`, b.splitBytes);
    entry.tokensSent++;
  }
  if (b.failAfter && entry.tokensSent >= b.failAfter.tokens) {
    if (gone()) return;
    // An error as the model's first response sets the status (an internal error: 500); later ones come after a 200.
    if (!headersSent) {
      headersSent = true;
      res.writeHead(500, { "content-type": "text/event-stream; charset=utf-8" });
    }
    await writeFrame(res, `data: ${JSON.stringify({ error: b.failAfter.error })}\n\n`, b.splitBytes);
  }
  if (gone()) return;
  sendHeaders();
  res.end();
}

async function writeFrame(res: http.ServerResponse, frame: string, splitBytes: number): Promise<void> {
  const bytes = Buffer.from(frame, "utf8");
  if (splitBytes <= 0) {
    res.write(bytes);
    return;
  }
  for (let at = 0; at < bytes.length; at += splitBytes) {
    if (res.destroyed) return;
    res.write(bytes.subarray(at, at + splitBytes));
    // A pause long enough for the piece to leave as its own TCP segment and be read on its own.
    await sleep(1);
  }
}

function empty(res: http.ServerResponse, status: number): void {
  res.writeHead(status, { "content-length": "0" });
  res.end();
}

/** Sends nothing more; the response stays open until the client or close() drops the connection. */
function hold(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => res.once("close", () => resolve()));
}
