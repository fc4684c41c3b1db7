// What an engine adapter honours of a task's sampling parameters and chat,
// how it says so in Info.features, and the refusal of the rest. Core places
// a task only on a replica whose features honour everything it sets
// (core/placement/task-features.ts); the adapter checks again before anything
// reaches its engine, so a parameter is never silently dropped, whoever
// sent the task.
import type { SamplingParams, ChatMessage } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure } from "../engine-adapter.js";

/** SamplingParams fields by their public (JSON) names, as features.sampling lists them. */
export type SamplingField =
  | "temperature"
  | "top_p"
  | "top_k"
  | "min_p"
  | "repeat_penalty"
  | "presence_penalty"
  | "frequency_penalty"
  | "stop"
  | "logit_bias"
  | "json_schema";

/** Whether a task sets each field; the order is the one features.sampling lists them in. */
const IS_SET: readonly [SamplingField, (s: SamplingParams) => boolean][] = [
  ["temperature", (s) => s.temperature !== undefined],
  ["top_p", (s) => s.topP !== undefined],
  ["top_k", (s) => s.topK !== undefined],
  ["min_p", (s) => s.minP !== undefined],
  ["repeat_penalty", (s) => s.repeatPenalty !== undefined],
  ["presence_penalty", (s) => s.presencePenalty !== undefined],
  ["frequency_penalty", (s) => s.frequencyPenalty !== undefined],
  ["stop", (s) => s.stop.length > 0],
  ["logit_bias", (s) => Object.keys(s.logitBias).length > 0],
  ["json_schema", (s) => s.jsonSchema !== ""],
];

export const SAMPLING_FIELDS: readonly SamplingField[] = IS_SET.map(([name]) => name);

/** The fields `sampling` sets, in features order. */
export function setFields(sampling: SamplingParams | undefined): SamplingField[] {
  return sampling ? IS_SET.filter(([, isSet]) => isSet(sampling)).map(([name]) => name) : [];
}

/** What one adapter honours; `chat` is how it renders a chat (absent: it cannot). */
export interface Honoured {
  /** The engine as messages name it, e.g. "llama.cpp server". */
  engine: string;
  sampling: readonly SamplingField[];
  chat?: string;
}

/** The Info.features entries for `h`: "sampling" (always, possibly empty) and "chat" when it chats. */
export function samplingFeatures(h: Honoured): Record<string, string> {
  const sampling = SAMPLING_FIELDS.filter((f) => h.sampling.includes(f)).join(",");
  return h.chat === undefined ? { sampling } : { sampling, chat: h.chat };
}

/**
 * Throws a non-retriable INVALID_REQUEST naming the first field of `request`
 * the adapter cannot honour (as a JSON pointer, like core's INVALID_PARAMS),
 * and what it honours instead; returns when it honours everything set.
 */
export function refuseUnhonoured(request: SubmitRequest, h: Honoured): void {
  if (request.messages.length > 0 && h.chat === undefined) {
    throw invalid(`the ${h.engine} cannot render a chat (/messages); send a prompt instead`);
  }
  const missing = setFields(request.sampling).filter((f) => !h.sampling.includes(f));
  if (missing.length === 0) return;
  const honoured = h.sampling.length > 0 ? h.sampling.join(", ") : "no sampling parameter";
  throw invalid(`the ${h.engine} cannot honour sampling.${missing.join(", sampling.")} (/sampling/${missing[0]}); it honours ${honoured}`);
}

/** Whether the task asked for stop strings: a "stop" the engine reports is then the task's own. */
export function stopsRequested(request: SubmitRequest): boolean {
  return (request.sampling?.stop.length ?? 0) > 0;
}

/** The task's JSON schema as an object; INVALID_REQUEST when it is not one. Undefined when unset. */
export function jsonSchemaOf(sampling: SamplingParams | undefined): Record<string, unknown> | undefined {
  if (!sampling || sampling.jsonSchema === "") return undefined;
  let schema: unknown;
  try {
    schema = JSON.parse(sampling.jsonSchema);
  } catch (err) {
    throw invalid(`sampling.json_schema is not JSON (/sampling/json_schema): ${(err as Error).message}`);
  }
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw invalid("sampling.json_schema must be a JSON Schema object (/sampling/json_schema)");
  }
  return schema as Record<string, unknown>;
}

/** The task's logit biases as [token id, bias] pairs, in token order; INVALID_REQUEST for a key that is not a token id. */
export function logitBiasPairs(sampling: SamplingParams | undefined): [number, number][] {
  const pairs: [number, number][] = [];
  for (const [key, bias] of Object.entries(sampling?.logitBias ?? {})) {
    if (!/^\d+$/.test(key) || !Number.isSafeInteger(Number(key))) {
      throw invalid(`sampling.logit_bias keys are token ids (decimal), not ${JSON.stringify(key)} (/sampling/logit_bias)`);
    }
    pairs.push([Number(key), bias]);
  }
  return pairs.sort((a, b) => a[0] - b[0]);
}

/** The chat as OpenAI-style messages ({role, content}), which every chat endpoint here takes. */
export function wireMessages(messages: readonly ChatMessage[]): { role: string; content: string }[] {
  return messages.map((m) => ({ role: m.role, content: m.content }));
}

function invalid(message: string): WorkerFailure {
  return new WorkerFailure(WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST, message, false);
}
