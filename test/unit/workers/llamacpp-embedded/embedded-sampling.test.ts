import test from "ava";
import { StopReason, Workload } from "../../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind, type SubmitRequest } from "../../../../contracts/gen/llama_orch/v1/worker.js";
import { demoVocabulary } from "../../../../workers/gguf/demo-vocabulary.js";
import { EmbeddedLlamaAdapter } from "../../../../workers/llamacpp-embedded/embedded-adapter.js";
import { chatPromptTokens, renderChat } from "../../../../workers/llamacpp-embedded/embedded-chat.js";
import { llamaRuntime } from "../../../../workers/llamacpp-embedded/llama-runtime.js";
import { DemoModels } from "../../../support/demo-models.js";
import { collect, quietLogger, submitRequest, workerFailure, type RequestParts } from "../helpers.js";

const models = new DemoModels();
const generation = models.write("gen.gguf", { seed: 11 });
const embedding = models.write("embed.gguf", { kind: "embedding", seed: 13 });
test.after.always(() => models.remove());

const started: EmbeddedLlamaAdapter[] = [];
test.after.always(async () => Promise.all(started.map((a) => a.stop())));

async function adapter(path = generation): Promise<EmbeddedLlamaAdapter> {
  const a = new EmbeddedLlamaAdapter(
    { modelRef: `file:${path}`, slots: 2, ctx: 512, threads: 1, gpu: "off", gpuLayers: 0, deviceMask: "", baseDir: "/" },
    quietLogger,
  );
  started.push(a);
  await a.start();
  return a;
}

const completion = (over: RequestParts = {}): SubmitRequest =>
  submitRequest({ workload: Workload.WORKLOAD_COMPLETION, prompt: "tell me about llamas", maxTokens: 40, seed: 5, ...over });

const textOf = async (a: EmbeddedLlamaAdapter, over: RequestParts) => (await collect(a, completion(over))).texts.join("");

test("the embedded engine announces every sampling field and chats through the model's template; an embedding model announces none", async (t) => {
  const f = (await adapter()).info().features;
  t.is(f.sampling, "temperature,top_p,top_k,min_p,repeat_penalty,presence_penalty,frequency_penalty,stop,logit_bias,json_schema");
  t.is(f.chat, "template");
  const e = (await adapter(embedding)).info().features;
  t.is(e.sampling, undefined);
  t.is(e.chat, undefined);
});

test("sampling parameters change the tokens, the same way for the same seed; temperature 0 is greedy whatever the seed", async (t) => {
  const a = await adapter();
  const plain = await textOf(a, {});
  const penalised = { sampling: { repeatPenalty: 1.5, presencePenalty: 0.5, frequencyPenalty: 0.5, topK: 10, topP: 0.8, minP: 0.1 } };
  const sampled = await textOf(a, penalised);
  t.not(sampled, plain);
  t.is(await textOf(a, penalised), sampled, "same seed, same parameters, same tokens");
  t.is(await textOf(a, { sampling: { temperature: 0 } }), await textOf(a, { sampling: { temperature: 0 }, seed: 99 }));
  t.not(await textOf(a, { sampling: { temperature: 1.5 } }), plain);
});

test("a stop string ends the generation before it, STOP, and it is not part of the text", async (t) => {
  const a = await adapter();
  const full = await textOf(a, {});
  const stop = full.slice(15, 19);
  const out = await collect(a, completion({ sampling: { stop: [stop] } }));
  t.is(out.result?.stopReason, StopReason.STOP_REASON_STOP);
  t.is(out.texts.join(""), full.slice(0, full.indexOf(stop)));
  const never = await collect(a, completion({ sampling: { stop: ["\u0000never"] } }));
  t.is(never.texts.join(""), full, "a stop string that never matches changes nothing");
  t.is(never.result?.stopReason, StopReason.STOP_REASON_MAX_TOKENS);
});

test("a logit bias is added to the token's logit: +100 makes it every token; a token the vocabulary lacks is refused", async (t) => {
  const a = await adapter();
  const llama = String(demoVocabulary().tokens.indexOf("\u2581llama"));
  const out = await collect(a, completion({ maxTokens: 8, sampling: { logitBias: { [llama]: 100 } } }));
  t.deepEqual(out.texts, new Array<string>(8).fill(" llama"));
  const refused = workerFailure(t, (await collect(a, completion({ sampling: { logitBias: { "99999": 1 } } }))).error);
  t.is(refused.kind, WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.regex(refused.message, /token 99999, which this model's vocabulary of \d+ does not have/);
});

test("a JSON schema constrains the output through a grammar: the text is JSON of that schema, and the grammar's end is EOS", async (t) => {
  const a = await adapter();
  const schema = { type: "object", properties: { answer: { enum: ["yes", "no"] } } };
  const out = await collect(a, completion({ maxTokens: 100, sampling: { jsonSchema: JSON.stringify(schema) } }));
  t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS);
  const parsed = JSON.parse(out.texts.join("")) as { answer: string };
  t.true(["yes", "no"].includes(parsed.answer));
  const again = await collect(a, completion({ maxTokens: 100, sampling: { jsonSchema: JSON.stringify(schema) } }));
  t.deepEqual(again.texts, out.texts, "deterministic under the grammar too");
  t.regex(workerFailure(t, (await collect(a, completion({ sampling: { jsonSchema: "[]" } }))).error).message, /JSON Schema object/);
});

test("a chat is rendered by the model's own ChatML template, message text never becoming control tokens", async (t) => {
  const runtime = await llamaRuntime("off", quietLogger);
  const model = await runtime.llama.loadModel({ modelPath: generation, gpuLayers: 0 });
  t.teardown(() => model.dispose());
  const messages = [
    { role: "system", content: "be brief" },
    { role: "user", content: "hi <|im_start|>" },
  ];
  const rendered = renderChat(runtime, model, messages).toString();
  // BOS, then the ChatML turns; the "<|im_start|>" the user typed is part of the user's text.
  t.is(rendered, "BOS<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi <|im_start|><|im_end|>\n<|im_start|>assistant\n");
  const tokens = chatPromptTokens(runtime, model, messages);
  const imStart = demoVocabulary().tokens.indexOf("<|im_start|>");
  t.is(tokens.filter((id) => id === imStart).length, 3, "system, user and assistant: the one in the user's text is plain text");
});

test("a chat streams like a prompt, from the template's tokens; another conversation another reply; an unknown role is refused", async (t) => {
  const a = await adapter();
  const chat = (content: string) => collect(a, completion({ prompt: "", messages: [{ role: "user", content }], maxTokens: 12 }));
  const hi = await chat("hello there");
  t.is(hi.error, undefined);
  t.is(hi.texts.length, 12);
  t.true((hi.started ?? 0) > 8, "the template's tokens around the message");
  t.notDeepEqual((await chat("the llama sleeps")).texts, hi.texts);
  t.deepEqual((await chat("hello there")).texts, hi.texts);
  const odd = await collect(a, completion({ prompt: "", messages: [{ role: "tool", content: "x" }] }));
  t.regex(workerFailure(t, odd.error).message, /role is "system", "user" or "assistant", not "tool"/);
});
