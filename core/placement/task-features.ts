// What a task needs an engine to honour, as placement feature keys. A replica
// announces them in Info.features: "seed": "true" for reproducible sampling,
// "sampling": a comma-separated list of the SamplingParams fields it honours,
// "chat": how it renders messages (e.g. "template"). A task is only placed on
// a replica that honours everything it sets: nothing is silently dropped.
import { Determinism } from "../../contracts/gen/llama_orch/v1/common.js";
import type { SamplingParams } from "../../contracts/gen/llama_orch/v1/common.js";
import type { CreateTaskRequest } from "../../contracts/gen/llama_orch/v1/task.js";

/** SamplingParams fields by their public (JSON) names, and whether the task sets each. */
const SAMPLING_FIELDS: readonly [name: string, isSet: (s: SamplingParams) => boolean][] = [
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

/** The key of a listed feature: "sampling.top_k" is "top_k" in the replica's "sampling" list. */
export const samplingFeature = (field: string): string => `sampling.${field}`;
export const CHAT_FEATURE = "chat";

export function requiredFeaturesOf(request: CreateTaskRequest): string[] {
  const features = request.determinism === Determinism.DETERMINISM_STRICT ? ["seed"] : [];
  const sampling = request.sampling;
  if (sampling) for (const [name, isSet] of SAMPLING_FIELDS) if (isSet(sampling)) features.push(samplingFeature(name));
  if (request.messages.length > 0) features.push(CHAT_FEATURE);
  return features;
}

/**
 * Whether a replica's features satisfy one key: "a.b" means b is in the
 * comma-separated list under a; a bare key must be "true", except "chat",
 * which names the replica's way of rendering a chat and must only be set.
 */
export function hasFeature(features: Readonly<Record<string, string>>, key: string): boolean {
  const dot = key.indexOf(".");
  if (dot > 0) {
    const list = features[key.slice(0, dot)] ?? "";
    return list.split(",").some((item) => item.trim() === key.slice(dot + 1));
  }
  const value = Object.hasOwn(features, key) ? features[key] : undefined;
  return key === CHAT_FEATURE ? value !== undefined && value !== "" && value !== "false" : value === "true";
}

/** The request field a missing request feature stands for, as a JSON pointer; undefined for engine features (seed). */
export function fieldOfFeature(key: string): string | undefined {
  if (key === CHAT_FEATURE) return "/messages";
  if (key.startsWith("sampling.")) return `/sampling/${key.slice("sampling.".length)}`;
  return undefined;
}
