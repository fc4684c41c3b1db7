import type { ServerWritableStream } from "@grpc/grpc-js";
import type { TokenBatch } from "../../contracts/gen/llama_orch/v1/common.js";
import type { SubmitRequest, SubmitResponse, WorkerEnd, WorkerError, WorkerMetrics } from "../../contracts/gen/llama_orch/v1/worker.js";
import type { GenerationSink } from "../engine-adapter.js";

export type SubmitCall = ServerWritableStream<SubmitRequest, SubmitResponse>;

/** How a generation's stream closes: `end`, `error`, or nothing when the client already left. */
export type Terminal = { $case: "end"; end: WorkerEnd } | { $case: "error"; error: WorkerError };

/**
 * Writes one generation to its Submit call. This is the hot path: per token
 * batch it does one write at most, and it never logs, never schedules.
 *
 * Batching follows the call's backpressure and nothing else. While the call
 * is writable every batch goes out at once, so a lone token is never held
 * back waiting for company. Once `write` returns false, later batches are
 * appended to one pending batch that goes out on `drain`, so several tokens
 * share a message exactly when the client (or network) is behind.
 */
export class SubmitStream implements GenerationSink {
  /** Tokens handed over so far; also the index the next token gets. */
  tokensOut = 0;
  tokensIn = 0;
  /** Embedding vectors or rerank scores handed over so far. */
  resultsOut = 0;
  /** performance.now() at `started`, for decode time when the engine reports none. */
  startedAt: number | undefined;
  private writable = true;
  /** Tokens produced while the call was not writable; sent as one batch on drain. */
  private pending: TokenBatch | undefined;
  /** Set once the client has gone or the terminal event was written; later calls are no-ops. */
  private closed = false;
  // Bound once so waiting for drain allocates no closure per backlog episode.
  private readonly onDrain = (): void => this.drained();

  constructor(
    private readonly call: SubmitCall,
    private readonly onStarted: (tokensIn: number) => void,
    /** The index of the first token this call carries: a resumed call starts after what its caller has. */
    firstTokenIndex = 0,
  ) {
    this.tokensOut = firstTokenIndex;
  }

  started(tokensIn: number): void {
    if (this.startedAt !== undefined) return;
    this.startedAt = performance.now();
    this.tokensIn = tokensIn;
    if (!this.closed) this.send({ event: { $case: "started", started: { tokensIn } } });
    this.onStarted(tokensIn);
  }

  tokens(texts: string[]): void {
    const n = texts.length;
    if (n === 0 || this.closed) return;
    // An adapter that forgot `started` still yields a well-formed stream.
    if (this.startedAt === undefined) this.started(0);
    if (this.pending) {
      const into = this.pending.texts;
      for (let i = 0; i < n; i++) into.push(texts[i]!);
    } else if (this.writable) {
      this.send({ event: { $case: "tokens", tokens: { firstIndex: this.tokensOut, texts } } });
    } else {
      // The sink owns `texts` (see GenerationSink), so it can become the pending batch as is.
      this.pending = { firstIndex: this.tokensOut, texts };
    }
    this.tokensOut += n;
  }

  embedding(index: number, vector: number[]): void {
    this.result({ event: { $case: "embedding", embedding: { index, vector } } });
  }

  rerank(index: number, relevanceScore: number): void {
    this.result({ event: { $case: "rerank", rerank: { index, relevanceScore } } });
  }

  metrics(metrics: WorkerMetrics): void {
    // Metrics frames may be dropped; sending one while tokens wait would also reorder them.
    if (this.closed || !this.writable || this.startedAt === undefined) return;
    this.send({ event: { $case: "metrics", metrics } });
  }

  /** Flushes pending tokens, writes the terminal event and ends the call with OK. */
  finish(terminal: Terminal): void {
    if (this.closed) return;
    this.closed = true;
    // Past this point nothing more is produced, so the buffered backlog is bounded.
    if (this.pending) this.call.write({ event: { $case: "tokens", tokens: this.pending } });
    this.pending = undefined;
    this.call.write({ event: terminal });
    this.call.end();
  }

  /** The client cancelled the call: nothing can be written any more. */
  abandon(): void {
    this.closed = true;
    this.pending = undefined;
  }

  /**
   * One result per input: their number is bounded by the task's inputs, so
   * they go out at once and grpc-js holds any backlog; only tokens, which can
   * be many, are merged under backpressure.
   */
  private result(message: SubmitResponse): void {
    if (this.closed) return;
    if (this.startedAt === undefined) this.started(0);
    this.resultsOut++;
    this.call.write(message);
  }

  private send(message: SubmitResponse): void {
    this.writable = this.call.write(message);
    if (!this.writable) this.call.once("drain", this.onDrain);
  }

  private drained(): void {
    this.writable = true;
    const batch = this.pending;
    this.pending = undefined;
    if (batch && !this.closed) this.send({ event: { $case: "tokens", tokens: batch } });
  }
}
