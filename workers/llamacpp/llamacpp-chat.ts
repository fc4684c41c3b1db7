// A chat rendered by the llama.cpp server with the model's own chat template:
// POST /apply-template {messages} answers {prompt} without running the model
// (ggml-org/llama.cpp tools/server/README.md: "Uses the server's prompt
// template formatting functionality to convert chat messages to a single
// string expected by a chat model as input, but does not perform
// inference"). The prompt then goes through the same POST /completion stream
// as any other, so a chat keeps every /completion field (id_slot,
// cache_prompt, all sampling parameters, stop_type) and its tokens arrive in
// the same frames; /v1/chat/completions would be a second stream format for
// the same generation.
import type { ChatMessage } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind } from "../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure } from "../engine-adapter.js";
import type { EngineHttp } from "../http/engine-http.js";
import { failureOf, statusOfFailure } from "../http/engine-errors.js";
import { wireMessages } from "../engine/sampling-support.js";

export const APPLY_TEMPLATE_PATH = "/apply-template";

/**
 * The chat as the model's prompt. Rejects like any engine call (the
 * server's 400 for a conversation its template refuses is INVALID_REQUEST);
 * a 404 is a build without the endpoint (before February 2025), which no
 * retry of the task fixes: ENGINE_ERROR saying so. Aborting `signal` rejects
 * with its reason.
 */
export async function renderChat(http: EngineHttp, messages: readonly ChatMessage[], signal: AbortSignal): Promise<string> {
  let answer: { body: unknown };
  try {
    answer = await http.postJson(APPLY_TEMPLATE_PATH, { messages: wireMessages(messages) }, { signal, retryConnect: true });
  } catch (err) {
    if (err instanceof WorkerFailure && statusOfFailure(err) === 404) {
      throw new WorkerFailure(
        WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR,
        `${err.message} (this llama.cpp build has no POST ${APPLY_TEMPLATE_PATH}, so it cannot render chats; upgrade it)`,
        false,
      );
    }
    throw err;
  }
  const prompt = (answer.body as { prompt?: unknown } | null)?.prompt;
  if (typeof prompt !== "string") {
    throw failureOf({
      method: "POST",
      path: APPLY_TEMPLATE_PATH,
      kind: WorkerErrorKind.WORKER_ERROR_KIND_ENGINE_ERROR,
      cause: new Error('the answer has no "prompt" string'),
    });
  }
  return prompt;
}
