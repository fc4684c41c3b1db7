// The `models:` section of the edge's config: friendly names for what clients of the
// OpenAI- and Anthropic-compatible APIs put in `model`, e.g.
//
//   edge:
//     models:
//       qwen2.5-0.5b: { engine: llamacpp, model_ref: "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf", ctx: 4096 }
//       embed: { engine: llamacpp, model_ref: "file:/models/embed.gguf", pool: emb }
import type { Engine } from "../../contracts/gen/llama_orch/v1/common.js";
import { engines } from "../../contracts/enums.js";

/** What one friendly name stands for. Unset ctx: the largest a ready replica serving the model accepts. */
export interface ModelName {
  engine: Engine;
  modelRef: string;
  ctx?: number;
  /** Only this pool's replicas run its tasks (placement pin). */
  pool?: string;
}

const KEYS = ["engine", "model_ref", "ctx", "pool"];

/** The section as a name → target table; a malformed entry is an Error naming it, so the edge refuses to start. */
export function modelNamesFromConfig(raw: unknown): Record<string, ModelName> {
  if (raw === undefined || raw === null) return {};
  if (!isMapping(raw)) throw new Error("config: edge.models must be a mapping of model name to {engine, model_ref, ctx?, pool?}");
  const out: Record<string, ModelName> = {};
  for (const [name, entry] of Object.entries(raw)) out[name] = modelName(name, entry);
  return out;
}

function modelName(name: string, entry: unknown): ModelName {
  const where = `config: edge.models.${name}`;
  if (name.trim() === "" || name !== name.trim()) throw new Error(`${where}: a model name must be non-empty without surrounding spaces`);
  if (!isMapping(entry)) throw new Error(`${where} must be a mapping with engine and model_ref`);
  const unknown = Object.keys(entry).find((k) => !KEYS.includes(k));
  if (unknown) throw new Error(`${where}.${unknown} is not a setting (known: ${KEYS.join(", ")})`);
  const engine = typeof entry["engine"] === "string" ? engines.parse(entry["engine"]) : undefined;
  if (engine === undefined) throw new Error(`${where}.engine must be an engine name (llamacpp, vllm, tgi, triton, openai)`);
  const modelRef = entry["model_ref"];
  if (typeof modelRef !== "string" || modelRef.trim() === "") throw new Error(`${where}.model_ref must be a model reference`);
  const model: ModelName = { engine, modelRef };
  const ctx = entry["ctx"];
  if (ctx !== undefined) {
    if (typeof ctx !== "number" || !Number.isInteger(ctx) || ctx < 1) throw new Error(`${where}.ctx must be a positive integer`);
    model.ctx = ctx;
  }
  const pool = entry["pool"];
  if (pool !== undefined) {
    if (typeof pool !== "string" || pool === "") throw new Error(`${where}.pool must be a pool id`);
    model.pool = pool;
  }
  return model;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
