// A chat as the prompt tokens of the model's own chat template.
// node-llama-cpp resolves a chat wrapper from the GGUF's
// `tokenizer.chat_template` (resolveChatWrapper: a specialised wrapper when
// the Jinja template is equivalent to one, e.g. ChatML, else the template
// itself); generateContextState renders the history as a LlamaText whose
// template parts are special tokens and whose messages stay plain text, so
// a message cannot smuggle in a control token. The history ends with an
// open model turn, which the generation then writes; a chat whose last
// message is the assistant's continues that message instead.
import type { ChatHistoryItem, ChatWrapper, LlamaModel, LlamaText, Token } from "node-llama-cpp";
import type { ChatMessage } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind } from "../../contracts/gen/llama_orch/v1/worker.js";
import { WorkerFailure } from "../engine-adapter.js";
import type { LlamaRuntime } from "./llama-runtime.js";

/** One wrapper per loaded model: resolving parses the template. */
const wrappers = new WeakMap<LlamaModel, ChatWrapper>();

/** The prompt tokens of `messages` rendered by the model's template; INVALID_REQUEST for a role it has no turn for. */
export function chatPromptTokens(runtime: LlamaRuntime, model: LlamaModel, messages: readonly ChatMessage[]): Token[] {
  return renderChat(runtime, model, messages).tokenize(model.tokenizer);
}

/** The chat as the template renders it: special tokens where the template has them, the messages as text. */
export function renderChat(runtime: LlamaRuntime, model: LlamaModel, messages: readonly ChatMessage[]): LlamaText {
  let wrapper = wrappers.get(model);
  if (!wrapper) {
    wrapper = runtime.module.resolveChatWrapper(model);
    wrappers.set(model, wrapper);
  }
  return wrapper.generateContextState({ chatHistory: historyOf(messages) }).contextText;
}

function historyOf(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history = messages.map((m): ChatHistoryItem => {
    switch (m.role) {
      case "system":
        return { type: "system", text: m.content };
      case "user":
        return { type: "user", text: m.content };
      case "assistant":
        return { type: "model", response: [m.content] };
      default:
        throw new WorkerFailure(
          WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST,
          `a chat message's role is "system", "user" or "assistant", not ${JSON.stringify(m.role)} (/messages)`,
          false,
        );
    }
  });
  if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] });
  return history;
}
