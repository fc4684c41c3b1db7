// Sampling and chat through the whole stack, for every engine adapter on its
// fake: edge -> core -> one sidecar per engine. The adapters' own tests
// (test/unit/workers/adapter-sampling-cases.ts) cover each field; this
// checks that the task's parameters travel, that core refuses what no
// replica's features list, and that a stop string ends the public stream
// with stop_reason "stop".
import test, { type ExecutionContext } from "ava";
import { api, stream, taskBody } from "../support/http.js";
import { TestSystem } from "../support/system.js";
import type { FakeRequest } from "../fakes/fake-http.js";
import { startFakeLlamaCpp } from "../fakes/llamacpp-fake.js";
import { startFakeOpenAi, startFakeVllm } from "../fakes/openai-fake.js";
import { startFakeTgi } from "../fakes/tgi-fake.js";
import { startFakeTriton } from "../fakes/triton-fake.js";

/** What this test needs of a fake engine; every fake in test/fakes/ has it. */
interface FakeEngine {
  url: string;
  requests: FakeRequest[];
  generations(): FakeRequest[];
  close(): Promise<void>;
}

/**
 * Per engine: a task's sampling under the engine's names, a stop string
 * (the fake's tokens contain it), a parameter the engine cannot honour (core
 * refuses it: no replica's features list it), and a chat (or its refusal).
 */
interface SampledEngine {
  engine: string;
  engineModel?: string;
  tokens: string[];
  start(tokens: string[]): Promise<FakeEngine>;
  /** What the engine's generation request contains for sampling { temperature: 0.5, top_p: 0.9, stop }. */
  engineSaw(stop: string): Record<string, unknown>;
  unhonoured?: { sampling: Record<string, unknown>; field: string };
  /** How the engine was asked to render the chat; undefined: it cannot chat. */
  chatRequest?: (fake: FakeEngine) => FakeRequest | undefined;
}

const CHAT = [{ role: "user", content: "hola" }];
const byPath = (path: string) => (fake: FakeEngine) => fake.requests.find((r) => r.path === path);

const SAMPLED: SampledEngine[] = [
  {
    engine: "llamacpp",
    tokens: ["Hola", " señor", " 🦙", "!"],
    start: (tokens) => startFakeLlamaCpp({ tokens }),
    engineSaw: (stop) => ({ temperature: 0.5, top_p: 0.9, stop: [stop] }),
    chatRequest: byPath("/apply-template"),
  },
  {
    engine: "vllm",
    engineModel: "fake-model",
    tokens: ["Hello", ",", " wörld", " 日本"],
    start: (tokens) => startFakeVllm({ tokens }),
    engineSaw: (stop) => ({ temperature: 0.5, top_p: 0.9, stop: [stop] }),
    chatRequest: byPath("/v1/chat/completions"),
  },
  {
    engine: "openai",
    engineModel: "fake-model",
    tokens: ["Bonjour", " à", " tous"],
    start: (tokens) => startFakeOpenAi({ tokens }),
    engineSaw: (stop) => ({ temperature: 0.5, top_p: 0.9, stop: [stop] }),
    unhonoured: { sampling: { top_k: 5 }, field: "/sampling/top_k" },
    // The openai adapter generates through chat anyway: the chat is the last request there.
    chatRequest: (fake) => fake.requests.filter((r) => r.path === "/v1/chat/completions").at(-1),
  },
  {
    engine: "tgi",
    tokens: ["Guten", " Tag", " naïve", " 🦙"],
    start: (tokens) => startFakeTgi({ tokens }),
    engineSaw: (stop) => ({
      parameters: { details: true, max_new_tokens: 50, temperature: 0.5, do_sample: true, top_p: 0.9, stop: [stop] },
    }),
    unhonoured: { sampling: { min_p: 0.1 }, field: "/sampling/min_p" },
    chatRequest: byPath("/v1/chat/completions"),
  },
  {
    engine: "triton",
    engineModel: "ensemble",
    tokens: ["Ciao", " a", " tutti"],
    start: (tokens) => startFakeTriton({ tokens }),
    // The stop string is the adapter's to match: not sent.
    engineSaw: () => ({ temperature: 0.5, top_p: 0.9 }),
    unhonoured: { sampling: { logit_bias: { "5": 1 } }, field: "/sampling/logit_bias" },
  },
];

test("edge -> core -> sidecar -> every engine: sampling reaches it, a stop string ends stop, what it cannot honour and chats it cannot render are refused", async (t) => {
  const fakes = await Promise.all(SAMPLED.map((spec) => spec.start(spec.tokens)));
  t.teardown(() => Promise.all(fakes.map((f) => f.close())));
  const modelOf = (spec: SampledEngine) => spec.engineModel ?? "hf:org/e2e";
  // One core and edge, one sidecar per engine: a task names its engine, so placement picks that one.
  const sys = await TestSystem.start({
    workers: SAMPLED.map((spec, i) => ({
      replica: `${spec.engine}-1`,
      engine: spec.engine,
      model: modelOf(spec),
      slots: 2,
      flags: {
        "engine-url": fakes[i]!.url,
        "serves-any-model": "false",
        ...(spec.engineModel ? { "engine-model": spec.engineModel } : {}),
      },
    })),
  });
  t.teardown(() => sys.stop());
  for (const [i, spec] of SAMPLED.entries()) await checkSampling(t, sys, spec, fakes[i]!, modelOf(spec));
});

/** One engine's part of the test above. */
async function checkSampling(t: ExecutionContext, sys: TestSystem, spec: SampledEngine, fake: FakeEngine, model: string): Promise<void> {
  const at = spec.engine;
  const task = (fields: Record<string, unknown>) =>
    taskBody({ engine: spec.engine, model_ref: model, max_tokens: 50, ctx: 1024, ...fields });
  const run = async (fields: Record<string, unknown>) => {
    const body = task(fields);
    const admitted = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
    t.is(admitted.status, 202, `${at}: ${admitted.text}`);
    const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
    await s.done;
    return s.events;
  };
  const refusal = async (fields: Record<string, unknown>) => {
    const refused = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: task(fields) });
    t.is(refused.status, 400, `${at}: ${refused.text}`);
    t.is(refused.json.code, "INVALID_PARAMS", at);
    return refused.json.field as string;
  };

  const stop = spec.tokens.at(-1)!;
  const events = await run({ prompt: "say hello", sampling: { temperature: 0.5, top_p: 0.9, stop: [stop] } });
  t.is(events.at(-1)!.data.stop_reason, "stop", at);
  const text = events.filter((e) => e.event === "token").map((e) => e.data.t as string);
  t.is(text.join(""), spec.tokens.slice(0, -1).join(""), `${at}: the text before the stop string, without it`);
  t.like(fake.generations().at(-1)!.body, spec.engineSaw(stop), at);

  if (spec.unhonoured) t.is(await refusal({ sampling: spec.unhonoured.sampling }), spec.unhonoured.field, at);

  const chat = { prompt: "", messages: CHAT };
  if (!spec.chatRequest) {
    t.is(await refusal(chat), "/messages", at);
    return;
  }
  const chatted = await run(chat);
  t.is(chatted.at(-1)!.event, "end", at);
  t.deepEqual(
    chatted.filter((e) => e.event === "token").map((e) => e.data.t),
    spec.tokens,
    at,
  );
  t.like(spec.chatRequest(fake)?.body, { messages: CHAT }, `${at}: the messages as they are, for the model's template`);
}
