// What only TGI does with sampling and chats, beside the conformance table's
// cases in tgi-adapter.test.ts: the Messages API's finish reasons, and the
// values TGI refuses that other engines take as "no filtering".
import test, { type ExecutionContext } from "ava";
import { StopReason } from "../../../contracts/gen/llama_orch/v1/common.js";
import { TgiAdapter } from "../../../workers/tgi/tgi-adapter.js";
import { TGI_FAKE_DEFAULTS, startFakeTgi, type TgiFake } from "../../fakes/tgi-fake.js";
import { collect, submitRequest, within } from "./helpers.js";

const DEFAULT_TEXTS = TGI_FAKE_DEFAULTS.tokens;
const MESSAGES = [
  { role: "system", content: "be brief" },
  { role: "user", content: "hi" },
];

async function fake(t: ExecutionContext): Promise<TgiFake> {
  const f = await startFakeTgi();
  t.teardown(() => f.close());
  return f;
}

async function adapter(t: ExecutionContext, f: TgiFake): Promise<TgiAdapter> {
  const a = new TgiAdapter({ baseUrl: f.url, modelRef: "hf:fake-org/tiny-llama", pollIntervalMs: 20 }, { probeTimeoutMs: 3_000 });
  t.teardown(() => a.stop());
  await within(a.start(), 3_000, "adapter ready");
  return a;
}

test("a chat's stop sequence ends STOP without it; the end of sequence is EOS, and usage gives tokens_in", async (t) => {
  const f = await fake(t);
  const a = await adapter(t, f);
  const chat = (stop: string[]) => collect(a, submitRequest({ prompt: "", maxTokens: 50, messages: MESSAGES, sampling: { stop } }));
  const stopped = await chat(["naïve"]);
  t.is(stopped.result?.stopReason, StopReason.STOP_REASON_STOP);
  t.is(stopped.texts.join(""), "Hello, world — ");
  const ended = await chat(["never"]);
  t.is(ended.result?.stopReason, StopReason.STOP_REASON_EOS, "finish_reason stop is TGI's end of sequence");
  t.deepEqual(ended.texts, DEFAULT_TEXTS);
  t.true((ended.result?.tokensIn ?? 0) > 0);
});

test("temperature 0 is greedy: no sampling filters, do_sample false; top_p 1 and top_k 0 filter nothing, so they are left out", async (t) => {
  const f = await fake(t);
  const a = await adapter(t, f);
  await collect(a, submitRequest({ maxTokens: 3, sampling: { temperature: 0, topK: 5, topP: 0.5 } }));
  await collect(a, submitRequest({ maxTokens: 3, sampling: { topP: 1, topK: 0 } }));
  const [greedy, unfiltered] = f.generations();
  t.deepEqual(greedy!.body, { inputs: "tell me a story", parameters: { details: true, max_new_tokens: 3, do_sample: false } });
  t.deepEqual(unfiltered!.body, { inputs: "tell me a story", parameters: { details: true, max_new_tokens: 3 } });
});
