import test from "ava";
import { SamplingParams, StopReason } from "../../../contracts/gen/llama_orch/v1/common.js";
import { MockEngine } from "../../../workers/mock/mock-engine.js";
import { renderMockChat } from "../../../workers/mock/mock-sampling.js";
import { collect, submitRequest } from "./helpers.js";

async function mock(): Promise<MockEngine> {
  const engine = new MockEngine();
  await engine.start();
  return engine;
}

const sampled = (s: Partial<SamplingParams>) =>
  submitRequest({ prompt: "tell me", maxTokens: 40, seed: 3, sampling: SamplingParams.fromPartial(s) });

test("the mock announces what it honours: every sampling field but json_schema, and chats through its template", async (t) => {
  const f = (await mock()).info().features;
  t.is(f["sampling"], "temperature,top_p,top_k,min_p,repeat_penalty,presence_penalty,frequency_penalty,stop,logit_bias");
  t.is(f["chat"], "template");
});

test("a sampling parameter changes the text, the same way every time; no parameters keep the plain text", async (t) => {
  const engine = await mock();
  const plain = (await collect(engine, submitRequest({ prompt: "tell me", maxTokens: 40, seed: 3 }))).texts;
  t.deepEqual((await collect(engine, sampled({}))).texts, plain);
  const warm = (await collect(engine, sampled({ temperature: 0.2 }))).texts;
  t.notDeepEqual(warm, plain);
  t.deepEqual((await collect(engine, sampled({ temperature: 0.2 }))).texts, warm);
  t.notDeepEqual((await collect(engine, sampled({ temperature: 0.3 }))).texts, warm);
});

test("a stop string ends the generation before it, with stop_reason stop", async (t) => {
  const engine = await mock();
  const full = (await collect(engine, sampled({}))).texts.join("");
  const stop = full.slice(20, 26);
  const out = await collect(engine, sampled({ stop: [stop] }));
  t.is(out.result?.stopReason, StopReason.STOP_REASON_STOP);
  t.is(out.texts.join(""), full.slice(0, full.indexOf(stop)));
});

test("a chat becomes its template's text; the reply depends on the conversation", async (t) => {
  t.is(
    renderMockChat([
      { role: "system", content: "be brief" },
      { role: "user", content: "hi" },
    ]),
    "<|system|>be brief\n<|user|>hi\n<|assistant|>",
  );
  const engine = await mock();
  const chat = (content: string) =>
    collect(engine, submitRequest({ prompt: "", messages: [{ role: "user", content }], maxTokens: 10, seed: 1 }));
  const a = await chat("hello");
  t.is(a.texts.length, 10);
  t.is(a.started, 2, "the rendered chat's words: <|user|>hello and <|assistant|>");
  t.notDeepEqual((await chat("goodbye")).texts, a.texts);
});
