import type { ExecutionContext } from "ava";
import { credentials, type ClientReadableStream } from "@grpc/grpc-js";
import type { Logger } from "../../../contracts/runtime/logger.js";
import {
  SubmitRequest,
  WorkerServiceClient,
  type InfoResponse,
  type LoadModelResponse,
  type SubmitResponse,
  type WorkerHealth,
  type WorkerProps,
} from "../../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure, type EngineAdapter, type GenerationResult } from "../../../workers/engine-adapter.js";
import { startWorker, type RunningWorker, type WorkerConfig } from "../../../workers/sidecar/worker.js";

/** Tests keep their output for failures, not for worker log lines. */
import { quietLogger } from "../../support/log-capture.js";

export { logCapture, quietLogger } from "../../support/log-capture.js";

/** What a test may set of a SubmitRequest: any part of it, nested messages (sampling) partly too. */
export type RequestParts = Parameters<typeof SubmitRequest.fromPartial>[0];

export function submitRequest(overrides: RequestParts = {}): SubmitRequest {
  return SubmitRequest.fromPartial({ taskId: "task-1", sessionId: "session-1", prompt: "tell me a story", maxTokens: 16, ...overrides });
}

export interface Collected {
  started?: number;
  batches: string[][];
  texts: string[];
  /** The sink's calls in order: "started:<tokensIn>" and "tokens:<how many>". */
  calls: string[];
  /** Embedding vectors and rerank scores, by index, as the sink received them. */
  embeddings: { index: number; vector: number[] }[];
  scores: { index: number; score: number }[];
  result?: GenerationResult;
  error?: unknown;
}

/**
 * Runs one generation straight on an adapter, recording what reached the
 * sink; `onTokens` sees the record after every batch (to cancel, or to kill
 * the engine, at a given token).
 */
export async function collect(
  engine: EngineAdapter,
  request: SubmitRequest,
  signal = new AbortController().signal,
  onTokens?: (out: Collected) => void,
): Promise<Collected> {
  const out: Collected = { batches: [], texts: [], calls: [], embeddings: [], scores: [] };
  try {
    out.result = await engine.generate(request, signal, {
      started: (n) => {
        out.started = n;
        out.calls.push(`started:${n}`);
      },
      tokens: (texts) => {
        out.batches.push([...texts]);
        out.texts.push(...texts);
        out.calls.push(`tokens:${texts.length}`);
        onTokens?.(out);
      },
      embedding: (index, vector) => {
        out.embeddings.push({ index, vector });
        out.calls.push(`embedding:${index}`);
      },
      rerank: (index, score) => {
        out.scores.push({ index, score });
        out.calls.push(`rerank:${index}`);
      },
    });
  } catch (err) {
    out.error = err;
  }
  return out;
}

/** `err` as a WorkerFailure; the test fails when it is anything else. */
export function workerFailure(t: ExecutionContext, err: unknown): WorkerFailure {
  t.true(err instanceof WorkerFailure, `expected a WorkerFailure, got ${String(err)}`);
  return err as WorkerFailure;
}

/** `p`, or a rejection naming `what` once `ms` passed: a test fails instead of hanging. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** A worker on an ephemeral port, stopped when the test ends. */
export async function startTestWorker(
  t: ExecutionContext,
  config: WorkerConfig = {},
  logger: Logger = quietLogger,
): Promise<{ worker: RunningWorker; client: WorkerServiceClient }> {
  const worker = await startWorker({ port: 0, ...config }, logger);
  const client = new WorkerServiceClient(worker.address, credentials.createInsecure());
  t.teardown(async () => {
    client.close();
    await worker.stop();
  });
  return { worker, client };
}

/** Every event of a Submit call, resolved when the server ends it. */
export function submitAll(client: WorkerServiceClient, request: SubmitRequest): Promise<SubmitResponse[]> {
  return drain(client.submit(request));
}

export function drain<T>(call: ClientReadableStream<T>): Promise<T[]> {
  const events: T[] = [];
  return new Promise((resolve, reject) => {
    call.on("data", (e: T) => events.push(e));
    call.on("error", reject);
    call.on("end", () => resolve(events));
  });
}

/** Resolves with the first message of `call` that satisfies `predicate`. */
export function firstMatching<T>(call: ClientReadableStream<T>, predicate: (m: T) => boolean): Promise<T> {
  return new Promise((resolve, reject) => {
    const onData = (m: T): void => {
      if (!predicate(m)) return;
      call.off("data", onData);
      resolve(m);
    };
    call.on("data", onData);
    call.on("error", reject);
    call.on("end", () => reject(new Error("stream ended before a matching message")));
  });
}

export function info(client: WorkerServiceClient): Promise<InfoResponse> {
  return new Promise((resolve, reject) => client.info({}, (err, res) => (err ? reject(err) : resolve(res))));
}

export function health(client: WorkerServiceClient): Promise<WorkerHealth> {
  return new Promise((resolve, reject) => client.health({}, (err, res) => (err ? reject(err) : resolve(res.health!))));
}

/** LoadModel; rejects with the grpc-js ServiceError (code, details) when the call fails. */
export function loadModel(client: WorkerServiceClient, modelRef: string): Promise<LoadModelResponse> {
  return new Promise((resolve, reject) =>
    client.loadModel({ modelRef, expectedDigest: "" }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

export function props(client: WorkerServiceClient): Promise<WorkerProps> {
  return new Promise((resolve, reject) => client.props({}, (err, res) => (err ? reject(err) : resolve(res.props!))));
}

/** Polls `check` until it holds or `ms` pass; for state that settles asynchronously on the server. */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 2_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return check();
}

/** The texts of all token batches, checking that first_index values are contiguous from 0. */
export function tokenTexts(t: ExecutionContext, events: SubmitResponse[]): string[] {
  const texts: string[] = [];
  for (const e of events) {
    if (e.event?.$case !== "tokens") continue;
    t.is(e.event.tokens.firstIndex, texts.length, "first_index continues where the previous batch ended");
    texts.push(...e.event.tokens.texts);
  }
  return texts;
}

/** Whether a string survives UTF-8 encoding unchanged: no lone surrogate, so it is valid UTF-8 on the wire. */
export function isWellFormedText(s: string): boolean {
  return Buffer.from(s, "utf8").toString("utf8") === s;
}
