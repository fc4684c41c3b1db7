// The JSON bodies the llama.cpp fake answers with (see llamacpp-fake.ts for
// the sources): GET /props, GET /slots, GET /metrics, the embeddings and
// rerank answers, and llama.cpp's error body.
import type http from "node:http";
import { fakeVector, rankedByScore, wordCount } from "./fake-pooling.js";
import type { FakeLlamaCppBehaviour } from "./llamacpp-fake.js";
import type { FakeSlots } from "./llamacpp-fake-slots.js";

/** What the fake counted for /metrics. */
export interface FakeTotals {
  promptTokens: number;
  predicted: number;
  maxTokens: number;
}

export function props(b: FakeLlamaCppBehaviour): unknown {
  return {
    default_generation_settings: {
      id: 0,
      id_task: -1,
      n_ctx: b.ctx,
      speculative: false,
      is_processing: false,
      params: { n_predict: -1, seed: 4294967295 },
    },
    total_slots: b.totalSlots,
    model_path: b.modelPath,
    chat_template: "",
    modalities: { vision: false },
    build_info: b.buildInfo,
    is_sleeping: false,
  };
}

export function slots(b: FakeLlamaCppBehaviour, slotTable: FakeSlots): unknown[] {
  return Array.from({ length: b.totalSlots }, (_, id) => ({
    id,
    id_task: slotTable.isBusy(id) ? 1 : -1,
    n_ctx: b.ctx,
    speculative: false,
    is_processing: slotTable.isBusy(id),
    params: { n_predict: -1, seed: 4294967295 },
    next_token: { has_next_token: true, has_new_line: false, n_remain: -1, n_decoded: 0 },
  }));
}

export function metricsText(b: FakeLlamaCppBehaviour, slotTable: FakeSlots, totals: FakeTotals): string {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, value: number): void => {
    lines.push(`# HELP llamacpp:${name} ${help}`, `# TYPE llamacpp:${name} ${type}`, `llamacpp:${name} ${value}`);
  };
  metric("prompt_tokens_total", "counter", "Number of prompt tokens processed.", totals.promptTokens);
  metric("tokens_predicted_total", "counter", "Number of generation tokens processed.", totals.predicted);
  metric("requests_processing", "gauge", "Number of requests processing.", slotTable.busyCount());
  metric("requests_deferred", "gauge", "Number of requests deferred.", 0);
  metric("n_tokens_max", "counter", "High watermark of the context size observed.", totals.maxTokens);
  if (b.kvCacheUsageRatio !== undefined)
    metric("kv_cache_usage_ratio", "gauge", "KV-cache usage. 1 means 100 percent usage.", b.kvCacheUsageRatio);
  return lines.join("\n") + "\n";
}

/** POST /apply-template: the messages in ChatML with the assistant's turn opened; undefined when there are none to render. */
export function chatMlPrompt(body: unknown): { prompt: string } | undefined {
  const messages = (body as { messages?: unknown } | undefined)?.messages;
  if (!Array.isArray(messages) || messages.length === 0) return undefined;
  const turns = messages.map(
    (m: { role?: unknown; content?: unknown }) => `<|im_start|>${String(m.role)}\n${String(m.content)}<|im_end|>\n`,
  );
  return { prompt: turns.join("") + "<|im_start|>assistant\n" };
}

/** format_embeddings_response_oaicompat: one entry per input, usage the sum of each input's tokens. */
export function embeddingsAnswer(inputs: string[], b: FakeLlamaCppBehaviour): unknown {
  const tokens = inputs.reduce((n, text) => n + wordCount(text), 0);
  return {
    model: "gpt-3.5-turbo",
    object: "list",
    usage: { prompt_tokens: tokens, total_tokens: tokens },
    data: inputs.map((text, index) => ({ embedding: fakeVector(text, b.embeddingDims), index, object: "embedding" })),
  };
}

/** format_response_rerank: best first, cut to top_n; a document's tokens are the query's and its own. */
export function rerankAnswer(query: string, documents: string[], topN: number, b: FakeLlamaCppBehaviour): unknown {
  const ranked = rankedByScore(query, documents);
  if (b.rerankOrder === "document") ranked.sort((x, y) => x.index - y.index);
  const tokens = documents.reduce((n, d) => n + wordCount(query) + wordCount(d), 0);
  return {
    model: "gpt-3.5-turbo",
    object: "list",
    usage: { prompt_tokens: tokens, total_tokens: tokens },
    results: ranked.slice(0, topN).map(({ index, score }) => ({ index, relevance_score: score })),
  };
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify(body));
}

export function sendError(res: http.ServerResponse, status: number, message: string, type: string): void {
  sendJson(res, status, { error: { code: status, message, type } });
}

/** llama.cpp's error `type` for a status (server-common's format_error_response). */
export function errorType(status: number): string {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 404:
      return "not_found_error";
    case 501:
      return "not_supported_error";
    case 503:
      return "unavailable_error";
    default:
      return "server_error";
  }
}
