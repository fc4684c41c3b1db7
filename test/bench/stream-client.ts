/**
 * The bench's clients, on node:http with one keep-alive agent: lean enough
 * that at 1,000 streams the client is not what is measured, the same code for
 * every setup. Each reads one stream frame by frame, notes when the first
 * token arrived, and hands every token to a StreamCheck.
 *   - engineStream: POST /completion (stream: true) in llama.cpp's format,
 *     straight to the engine or through nginx;
 *   - taskStream: POST /v1/tasks and GET /v1/tasks/{id}/stream through the edge.
 */
import http from "node:http";
import { StreamCheck } from "./exactness.js";

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

export interface StreamOptions {
  /** Called once, when the first token arrives. */
  onFirstToken?: () => void;
  /** Aborting ends the stream early; the check then only covers what arrived. */
  signal?: AbortSignal;
}

export interface StreamResult {
  /** Milliseconds from the first request to the first token; NaN when none came. */
  ttftMs: number;
  tokens: number;
  /** Undefined when the stream was exact (when aborted on purpose: no fault in what arrived). */
  problem: string | undefined;
}

interface Reply {
  status: number;
  res: http.IncomingMessage;
}

function send(url: string, method: string, body: string | undefined, signal?: AbortSignal): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders =
      body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) };
    const req = http.request(url, { method, agent, headers, ...(signal ? { signal } : {}) }, (res) =>
      resolve({ status: res.statusCode ?? 0, res }),
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function readAll(res: http.IncomingMessage): Promise<string> {
  res.setEncoding("utf8");
  let text = "";
  for await (const chunk of res) text += chunk as string;
  return text;
}

/** Calls `frame` with each blank-line-terminated SSE frame of the body; resolves when it ends (or is aborted). */
function frames(res: http.IncomingMessage, check: StreamCheck, frame: (text: string) => void): Promise<void> {
  return new Promise((resolve) => {
    let pending = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      pending += chunk;
      let at = pending.indexOf("\n\n");
      let from = 0;
      while (at >= 0) {
        try {
          frame(pending.slice(from, at));
        } catch (err) {
          check.fail(`unreadable frame ${JSON.stringify(pending.slice(from, Math.min(at, from + 200)))}: ${(err as Error).message}`);
        }
        from = at + 2;
        at = pending.indexOf("\n\n", from);
      }
      pending = pending.slice(from);
    });
    res.on("end", resolve);
    res.on("close", resolve);
    res.on("error", resolve);
  });
}

/** One stream of `n` tokens in llama.cpp's /completion format from `baseUrl` (the engine, or a proxy in front of it). */
export async function engineStream(baseUrl: string, n: number, opts: StreamOptions = {}): Promise<StreamResult> {
  const check = new StreamCheck(`${baseUrl} /completion`, n);
  const t0 = performance.now();
  let ttftMs = NaN;
  const body = JSON.stringify({ prompt: "benchmark prompt", n_predict: n, stream: true, cache_prompt: true });
  try {
    const { status, res } = await send(`${baseUrl}/completion`, "POST", body, opts.signal);
    if (status !== 200) check.fail(`HTTP ${status}: ${(await readAll(res)).slice(0, 200)}`);
    else
      await frames(res, check, (text) => {
        if (!text.startsWith("data: ")) return;
        const f = JSON.parse(text.slice(6)) as { content?: string; stop?: boolean; tokens_predicted?: number; error?: unknown };
        if (f.error !== undefined) return check.fail(`error frame ${text.slice(6, 200)}`);
        if (f.stop) return check.end(f.tokens_predicted ?? -1);
        if (Number.isNaN(ttftMs)) {
          ttftMs = performance.now() - t0;
          opts.onFirstToken?.();
        }
        check.token((f.tokens_predicted ?? 0) - 1, f.content ?? "");
      });
  } catch (err) {
    if (!opts.signal?.aborted) check.fail((err as Error).message);
  }
  return { ttftMs, tokens: check.tokens, problem: opts.signal?.aborted ? check.soFar() : check.verdict() };
}

/** One task of `n` tokens through the edge: admitted, then its stream read to the end. */
export async function taskStream(
  edgeUrl: string,
  n: number,
  task: Record<string, unknown>,
  opts: StreamOptions = {},
): Promise<StreamResult> {
  const check = new StreamCheck(`${edgeUrl} /v1/tasks`, n);
  const t0 = performance.now();
  let ttftMs = NaN;
  try {
    const admitted = await send(`${edgeUrl}/v1/tasks`, "POST", JSON.stringify(task), opts.signal);
    const answer = await readAll(admitted.res);
    if (admitted.status !== 202) throw new Error(`admission: HTTP ${admitted.status} ${answer.slice(0, 200)}`);
    const { task_id } = JSON.parse(answer) as { task_id: string };
    const { status, res } = await send(`${edgeUrl}/v1/tasks/${task_id}/stream`, "GET", undefined, opts.signal);
    if (status !== 200) throw new Error(`stream: HTTP ${status} ${(await readAll(res)).slice(0, 200)}`);
    await frames(res, check, (text) => {
      const data = text.indexOf("\ndata: ");
      if (data < 0) return; // a heartbeat comment
      if (text.includes("event: token\n")) {
        if (Number.isNaN(ttftMs)) {
          ttftMs = performance.now() - t0;
          opts.onFirstToken?.();
        }
        const f = JSON.parse(text.slice(data + 7)) as { t: string; i: number };
        return check.token(f.i, f.t);
      }
      if (text.includes("event: end\n")) return check.end((JSON.parse(text.slice(data + 7)) as { tokens_out: number }).tokens_out);
      if (text.includes("event: error\n")) check.fail(`error frame ${text.slice(data + 7, data + 300)}`);
    });
  } catch (err) {
    if (!opts.signal?.aborted) check.fail((err as Error).message);
  }
  return { ttftMs, tokens: check.tokens, problem: opts.signal?.aborted ? check.soFar() : check.verdict() };
}
