// A deterministic random-weight model that llama.cpp loads and runs: for
// trying the embedded engine without downloading anything, and for tests
// against real inference. Same options, same bytes.
import { encodeGguf, type GgufTensor, type GgufValue } from "./gguf-writer.js";
import { demoVocabulary, type Vocabulary } from "./demo-vocabulary.js";

/** What the model is for: text generation, embeddings, or reranking (a classifier head). */
export type DemoModelKind = "generation" | "embedding" | "ranking";

export interface DemoModelOptions {
  seed?: number;
  kind?: DemoModelKind;
  embeddingLength?: number;
  layers?: number;
  heads?: number;
  feedForwardLength?: number;
  contextLength?: number;
  /**
   * Whether the model may end a generation by itself. Without, the end token's
   * output row is zero and the others are scaled up, so its probability is
   * negligible: streams run to max_tokens (for tests and benchmarks).
   */
  endsGenerations?: boolean;
}

const DEFAULTS: Required<DemoModelOptions> = {
  seed: 1,
  kind: "generation",
  embeddingLength: 64,
  layers: 2,
  heads: 4,
  feedForwardLength: 128,
  contextLength: 4096,
  endsGenerations: true,
};

/**
 * llama.cpp's pooling types (llama.h `llama_pooling_type`): mean pooling
 * makes an embedding model, rank pooling a reranker.
 */
const POOLING_MEAN = 1;
const POOLING_RANK = 4;
/** llama.cpp's token type of control tokens (llama.h `llama_token_type`). */
const CONTROL_TOKEN = 3;

/** A ChatML template, so chat formatting has a real template to apply. */
const CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** mulberry32: a small, fast, seedable generator; quality is irrelevant for random weights. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function controlTokensOf(vocab: Vocabulary): Set<number> {
  return new Set(vocab.types.flatMap((type, id) => (type === CONTROL_TOKEN ? [id] : [])));
}

/** The GGUF bytes of a demo model, as chunks to write in order. */
export function demoModelGguf(options: DemoModelOptions = {}): Buffer[] {
  const o = { ...DEFAULTS, ...options };
  if (o.embeddingLength % o.heads !== 0) throw new Error(`embeddingLength ${o.embeddingLength} must be a multiple of heads ${o.heads}`);
  // The ranking head exists in llama.cpp's qwen3 architecture (its rerankers), not in llama's.
  const arch = o.kind === "ranking" ? "qwen3" : "llama";
  const vocab = demoVocabulary();
  return encodeGguf({ metadata: metadataOf(o, arch, vocab), tensors: tensorsOf(o, arch, vocab.tokens.length, controlTokensOf(vocab)) });
}

function metadataOf(o: Required<DemoModelOptions>, arch: string, vocab: Vocabulary): [string, GgufValue][] {
  const u32 = (value: number): GgufValue => ({ type: "uint32", value });
  const f32 = (value: number): GgufValue => ({ type: "float32", value });
  const headDim = o.embeddingLength / o.heads;
  const pooling: [string, GgufValue][] =
    o.kind === "embedding"
      ? [[`${arch}.pooling_type`, u32(POOLING_MEAN)]]
      : o.kind === "ranking"
        ? [
            [`${arch}.pooling_type`, u32(POOLING_RANK)],
            [`${arch}.classifier.output_labels`, { type: "array", of: "string", values: ["yes", "no"] }],
          ]
        : [];
  return [
    ["general.architecture", { type: "string", value: arch }],
    ["general.name", { type: "string", value: `llorch-demo-${o.kind}-${o.seed}` }],
    ["general.alignment", u32(32)],
    [`${arch}.context_length`, u32(o.contextLength)],
    [`${arch}.embedding_length`, u32(o.embeddingLength)],
    [`${arch}.block_count`, u32(o.layers)],
    [`${arch}.feed_forward_length`, u32(o.feedForwardLength)],
    [`${arch}.attention.head_count`, u32(o.heads)],
    [`${arch}.attention.head_count_kv`, u32(o.heads)],
    [`${arch}.attention.key_length`, u32(headDim)],
    [`${arch}.attention.value_length`, u32(headDim)],
    [`${arch}.rope.dimension_count`, u32(headDim)],
    [`${arch}.rope.freq_base`, f32(10_000)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(1e-5)],
    [`${arch}.vocab_size`, u32(vocab.tokens.length)],
    ...pooling,
    ["tokenizer.ggml.model", { type: "string", value: "llama" }],
    ["tokenizer.ggml.tokens", { type: "array", of: "string", values: vocab.tokens }],
    ["tokenizer.ggml.scores", { type: "array", of: "float32", values: vocab.scores }],
    ["tokenizer.ggml.token_type", { type: "array", of: "int32", values: vocab.types }],
    ["tokenizer.ggml.bos_token_id", u32(vocab.bos)],
    ["tokenizer.ggml.eos_token_id", u32(vocab.eos)],
    ["tokenizer.ggml.unknown_token_id", u32(vocab.unknown)],
    ["tokenizer.ggml.add_bos_token", { type: "bool", value: true }],
    ["tokenizer.chat_template", { type: "string", value: CHAT_TEMPLATE }],
  ];
}

/**
 * Zeroes the output rows of the given tokens and widens the others' logits,
 * so those tokens are (practically) never sampled.
 */
function silence(output: Float32Array, rowLength: number, tokens: ReadonlySet<number>): void {
  for (let i = 0; i < output.length; i++) output[i] = tokens.has(Math.floor(i / rowLength)) ? 0 : output[i]! * 2;
}

function tensorsOf(o: Required<DemoModelOptions>, arch: string, vocabSize: number, controlTokens: ReadonlySet<number>): GgufTensor[] {
  const next = random(o.seed);
  const e = o.embeddingLength;
  const headDim = e / o.heads;
  const tensor = (name: string, dims: number[], norm = false): GgufTensor => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    // Norm weights of 1 keep activations in range; the rest is uniform noise.
    for (let i = 0; i < data.length; i++) data[i] = norm ? 1 : (next() * 2 - 1) * 0.5;
    return { name, dims, data };
  };
  const output = tensor("output.weight", [e, vocabSize]);
  // Every control token, not only </s>: llama.cpp also ends a generation on the chat template's <|im_end|>.
  if (!o.endsGenerations) silence(output.data, e, controlTokens);
  const tensors = [tensor("token_embd.weight", [e, vocabSize]), tensor("output_norm.weight", [e], true), output];
  for (let l = 0; l < o.layers; l++) {
    const b = `blk.${l}`;
    tensors.push(
      tensor(`${b}.attn_norm.weight`, [e], true),
      tensor(`${b}.attn_q.weight`, [e, e]),
      tensor(`${b}.attn_k.weight`, [e, e]),
      tensor(`${b}.attn_v.weight`, [e, e]),
      tensor(`${b}.attn_output.weight`, [e, e]),
    );
    if (arch === "qwen3")
      tensors.push(tensor(`${b}.attn_q_norm.weight`, [headDim], true), tensor(`${b}.attn_k_norm.weight`, [headDim], true));
    tensors.push(
      tensor(`${b}.ffn_norm.weight`, [e], true),
      tensor(`${b}.ffn_gate.weight`, [e, o.feedForwardLength]),
      tensor(`${b}.ffn_up.weight`, [e, o.feedForwardLength]),
      tensor(`${b}.ffn_down.weight`, [o.feedForwardLength, e]),
    );
  }
  if (o.kind === "ranking") tensors.push(tensor("cls.output.weight", [e, 2]));
  return tensors;
}
