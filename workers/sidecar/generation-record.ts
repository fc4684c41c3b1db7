import type { WorkerMetrics } from "../../contracts/gen/llama_orch/v1/worker.js";
import type { GenerationSink } from "../engine-adapter.js";
import { SubmitStream, type SubmitCall, type Terminal } from "./submit-stream.js";

/** How much of a generation the sidecar holds for a core that went away. */
export interface HoldLimits {
  /** Tokens and results produced while no call is attached; one more stops the generation. */
  maxEvents: number;
  /** The same bound in bytes (token text, vectors), for generations of few but large events. */
  maxBytes: number;
}

type Result = { $case: "embedding"; index: number; vector: number[] } | { $case: "rerank"; index: number; relevanceScore: number };

/**
 * One generation's events, kept for as long as it runs so they outlive the
 * call that asked for them. Every event goes into the record and to the
 * attached call's SubmitStream, if any. When a detachable generation's call
 * breaks (core went away) it runs on into the record alone, up to the hold
 * limits, past which `overflow` stops it; a Resume attaches a new call,
 * which gets `started`, the tokens and results after what its caller
 * already has, the terminal event once there is one, and the rest live.
 * Metrics frames are snapshots: those made while detached are dropped.
 */
export class GenerationRecord implements GenerationSink {
  tokensIn = 0;
  /** performance.now() at `started`, for decode time when the engine reports none. */
  startedAt: number | undefined;
  private readonly texts: string[] = [];
  private readonly results: Result[] = [];
  private ended: Terminal | undefined;
  private writer: SubmitStream | undefined;
  private heldEvents = 0;
  private heldBytes = 0;
  private overflowed = false;

  constructor(
    private readonly limits: HoldLimits,
    private readonly onStarted: (tokensIn: number) => void,
    /** The hold is full: the owner stops the generation. */
    private readonly overflow: () => void,
  ) {}

  get tokensOut(): number {
    return this.texts.length;
  }

  get attached(): boolean {
    return this.writer !== undefined;
  }

  get terminal(): Terminal | undefined {
    return this.ended;
  }

  started(tokensIn: number): void {
    if (this.startedAt !== undefined) return;
    this.startedAt = performance.now();
    this.tokensIn = tokensIn;
    this.writer?.started(tokensIn);
    this.onStarted(tokensIn);
  }

  tokens(texts: string[]): void {
    if (texts.length === 0 || this.ended) return;
    if (this.startedAt === undefined) this.started(0);
    let bytes = 0;
    for (const text of texts) {
      this.texts.push(text);
      bytes += text.length * 2;
    }
    // The writer owns `texts` from here (it may grow it into a pending batch); the record has its own copies.
    if (this.writer) this.writer.tokens(texts);
    else this.held(texts.length, bytes);
  }

  embedding(index: number, vector: number[]): void {
    this.result({ $case: "embedding", index, vector }, vector.length * 8);
  }

  rerank(index: number, relevanceScore: number): void {
    this.result({ $case: "rerank", index, relevanceScore }, 16);
  }

  metrics(metrics: WorkerMetrics): void {
    this.writer?.metrics(metrics);
  }

  /** The terminal event: to the attached call (which it ends), and kept for a caller yet to resume. */
  finish(terminal: Terminal): void {
    if (this.ended) return;
    this.ended = terminal;
    this.writer?.finish(terminal);
    this.writer = undefined;
  }

  /**
   * Hands the generation to `call` (replacing any call attached before):
   * what the caller lacks first, given how many tokens and results it has,
   * then whatever comes next.
   */
  attach(call: SubmitCall, from: { tokens: number; results: number }): void {
    this.writer?.abandon();
    const tokens = Math.min(from.tokens, this.texts.length);
    const writer = new SubmitStream(call, noop, tokens);
    this.writer = writer;
    this.heldEvents = 0;
    this.heldBytes = 0;
    if (this.startedAt !== undefined) writer.started(this.tokensIn);
    if (tokens < this.texts.length) writer.tokens(this.texts.slice(tokens));
    for (const r of this.results.slice(from.results)) {
      if (r.$case === "embedding") writer.embedding(r.index, r.vector);
      else writer.rerank(r.index, r.relevanceScore);
    }
    if (this.ended) {
      writer.finish(this.ended);
      this.writer = undefined;
    }
  }

  /** The call broke: events go into the record alone until a call attaches again. */
  detach(): void {
    this.writer?.abandon();
    this.writer = undefined;
  }

  private result(r: Result, bytes: number): void {
    if (this.ended) return;
    if (this.startedAt === undefined) this.started(0);
    this.results.push(r);
    if (this.writer) {
      if (r.$case === "embedding") this.writer.embedding(r.index, r.vector);
      else this.writer.rerank(r.index, r.relevanceScore);
    } else {
      this.held(1, bytes);
    }
  }

  /** Counts what was produced with no call attached; past the limits the owner stops the generation, once. */
  private held(events: number, bytes: number): void {
    this.heldEvents += events;
    this.heldBytes += bytes;
    if (this.overflowed || (this.heldEvents <= this.limits.maxEvents && this.heldBytes <= this.limits.maxBytes)) return;
    this.overflowed = true;
    this.overflow();
  }
}

function noop(): void {}
