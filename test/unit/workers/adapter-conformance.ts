// The table of cases every HTTP engine adapter's tests share: what each
// adapter must do whatever its engine's protocol (stream, survive frames
// split anywhere, map errors before and inside a stream, time out a hung
// stream, cancel, follow a restart, report health and info, never leak its
// API key, honour or refuse sampling parameters, chat). An adapter's test
// file instantiates it with its fake engine and what that engine's answers
// must turn into; what only one engine has stays in that engine's own file.
// The cases are in adapter-stream-cases.ts, adapter-health-cases.ts and
// adapter-sampling-cases.ts, their fixtures in adapter-harness.ts.
import type { ExecutionContext } from "ava";
import type { WorkerErrorKind as K, SubmitRequest } from "../../../contracts/gen/llama_orch/v1/worker.js";
import type { EngineAdapter, EngineInfo } from "../../../workers/engine-adapter.js";
import type { FakeRequest } from "../../fakes/fake-http.js";
import { registerHealthCases } from "./adapter-health-cases.js";
import { registerSamplingCases } from "./adapter-sampling-cases.js";
import { registerStreamCases } from "./adapter-stream-cases.js";
import type { Collected, RequestParts } from "./helpers.js";

/** What the cases need of a fake engine; every fake in test/fakes/ has it. */
export interface ConformanceFake<Patch> {
  url: string;
  port: number;
  requests: FakeRequest[];
  generations(): FakeRequest[];
  setBehaviour(patch: Patch): void;
  close(): Promise<void>;
}

/** What a case may ask of the adapter beyond the engine file's test-sized defaults. */
export interface AdapterSettings {
  apiKey?: string;
  /** Longest silence inside a stream. */
  idleTimeoutMs?: number;
  slots?: number;
}

type Check<A, F> = (t: ExecutionContext, adapter: A, fake: F) => void | Promise<void>;

/** The sampling and chat cases (adapter-sampling-cases.ts). */
export interface SamplingSpec<Opts, F> {
  /** The fake the cases run against, when the default one does not serve them (Triton: a model that declares the inputs). */
  fake?: Opts;
  /** Info.features "sampling" and "chat" (undefined: no chat). */
  features: { sampling: string; chat?: string };
  /** A request that sets every honoured field, and what the engine's generation request then contains (compared with t.like). */
  passes: {
    request: RequestParts;
    engineRequest: { path?: string; body: unknown };
    check?(t: ExecutionContext, body: unknown): void;
  };
  /** Requests the adapter refuses before sending anything, and what the refusal says. */
  refused: { request: RequestParts; message: RegExp }[];
  /** A stop string among the fake's tokens: the generation ends STOP with `text` (what precedes the stop string). */
  stop: { fake?: Opts; request: RequestParts; text: string };
  /** A chat: its tokens, then how the engine was asked (the template's rendering or the chat endpoint). */
  chat?: { request: RequestParts; tokens: string[]; check(t: ExecutionContext, fake: F): void };
}

/**
 * One engine's instance of the table. `Opts` are its fake's start options
 * (a `port` restarts it where a closed one listened), `Patch` what its
 * setBehaviour takes. Cases marked optional run only for engines that give them.
 */
export interface ConformanceSpec<A extends EngineAdapter, Opts extends { port?: number }, Patch, F extends ConformanceFake<Patch>> {
  startFake(opts?: Opts): Promise<F>;
  createAdapter(url: string, settings?: AdapterSettings): A;
  streams: {
    fake?: Opts;
    request: Partial<SubmitRequest>;
    tokens: string[];
    /** What started() says: the prompt's tokens when the engine tells them before the first token, else 0; unset when that depends on timing. */
    started?: number;
    tokensIn: number | undefined;
    /** The engine reports its decode time (else the sidecar measures it). */
    engineDecodeTime: boolean;
    engineRequest?: { path?: string; body: unknown; authorization?: string };
    check?(t: ExecutionContext, out: Collected): void;
  };
  maxTokens?: { fake?: Opts; maxTokens: number; tokens: string[] };
  split: {
    tokens: string[];
    sizes: number[];
    fake(tokens: string[], bytes: number): Opts;
    request?: Partial<SubmitRequest>;
    tokensIn?: number;
  };
  /** A fake that writes a whole stream in one socket chunk. */
  oneChunk?: { fake: Opts; request: Partial<SubmitRequest>; tokens: string[]; started: number; tokensIn?: number };
  preStreamErrors: { behaviour: Patch; request?: Partial<SubmitRequest>; kind: K; retriable: boolean; message: string | RegExp }[];
  inStreamError: { fake: Opts; request?: Partial<SubmitRequest>; tokens: string[]; started: number; message: string | RegExp };
  /** A fake that goes silent after `tokens`. */
  hang: { fake: Opts; tokens: string[]; idleTimeoutMs: number; withinMs: number };
  cancel: {
    fake: Opts;
    total: number;
    abortAfter: number;
    settleWithinMs: number;
    beforeAbort?(t: ExecutionContext, fake: F): void;
    check?(t: ExecutionContext, fake: F, out: Collected): void;
  };
  /** `hold`: the engine keeps its first token back; `startedWhileHeld`: what started() said meanwhile. */
  cancelEarly: { hold: Patch; startedWhileHeld: number | undefined };
  /** A fake that stops after `tokens`, so that killing it leaves the stream cut there. */
  diesMidStream: { fake: Opts; tokens: string[] };
  restart: {
    before?: Opts;
    infoBefore?: Partial<EngineInfo>;
    after: Opts;
    lastError: RegExp;
    info?: Partial<EngineInfo>;
    tokens: string[];
    whileDown?(t: ExecutionContext, adapter: A): void;
  };
  loading: { fake: Opts; ready: Patch; live: boolean; lastError: string | RegExp };
  info: {
    mappings: { fake?: Opts; info: EngineInfo; slots: number }[];
    before?: { info: Partial<EngineInfo>; slots: number };
    configuredSlots: { fake?: Opts; slots: number; expect: number }[];
    check?: Check<A, F>;
  };
  sampling: SamplingSpec<Opts, F>;
  apiKey: {
    key: string;
    /** A part of the key that must not show either. */
    fragment?: string;
    /** A fake that wants the key. */
    fake: Opts;
    request?: Partial<SubmitRequest>;
    /** Behaviours whose error messages quote the key back. */
    echoes: { behaviour: Patch; request?: Partial<SubmitRequest>; message?: RegExp }[];
    /** A fake that wants another key; `health` when the refusal shows in health too. */
    wrongKey?: { fake: Opts; health?: RegExp; message: RegExp };
  };
}

/** How the cases read every engine's spec; the call site checks each spec's own types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the specs' type parameters differ per engine
export type AnySpec = ConformanceSpec<any, any, any, any>;

export function adapterConformance<A extends EngineAdapter, Opts extends { port?: number }, Patch, F extends ConformanceFake<Patch>>(
  spec: ConformanceSpec<A, Opts, Patch, F>,
): void {
  registerStreamCases(spec);
  registerHealthCases(spec);
  registerSamplingCases(spec);
}
