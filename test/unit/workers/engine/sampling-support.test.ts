import test from "ava";
import { SamplingParams } from "../../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind } from "../../../../contracts/gen/llama_orch/v1/worker.js";
import {
  jsonSchemaOf,
  logitBiasPairs,
  refuseUnhonoured,
  SAMPLING_FIELDS,
  samplingFeatures,
  setFields,
  stopsRequested,
  type Honoured,
} from "../../../../workers/engine/sampling-support.js";
import { submitRequest, workerFailure } from "../helpers.js";

const sampling = (s: Partial<SamplingParams>) => SamplingParams.fromPartial(s);
const LIMITED: Honoured = { engine: "test engine", sampling: ["temperature", "stop"] };

test("the fields a task sets, by their public names, in the order features list them", (t) => {
  t.deepEqual(setFields(undefined), []);
  t.deepEqual(setFields(sampling({})), []);
  t.deepEqual(setFields(sampling({ stop: ["x"], topK: 0, temperature: 0 })), ["temperature", "top_k", "stop"], "0 is set too");
  t.deepEqual(
    setFields(
      sampling({ logitBias: { "5": 1 }, jsonSchema: "{}", minP: 0.1, repeatPenalty: 1, presencePenalty: 0, frequencyPenalty: 0, topP: 1 }),
    ),
    ["top_p", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty", "logit_bias", "json_schema"],
  );
  t.is(SAMPLING_FIELDS.length, 10);
});

test("features: the honoured fields as one list in canonical order, and the chat rendering when there is one", (t) => {
  t.deepEqual(samplingFeatures({ engine: "e", sampling: ["stop", "temperature"] }), { sampling: "temperature,stop" });
  t.deepEqual(samplingFeatures({ engine: "e", sampling: [], chat: "template" }), { sampling: "", chat: "template" });
});

test("a set field the engine cannot honour is refused INVALID_REQUEST, non-retriable, naming it and what is honoured", (t) => {
  t.notThrows(() => refuseUnhonoured(submitRequest({ sampling: sampling({ temperature: 0.5, stop: ["\n"] }) }), LIMITED));
  const err = t.throws(() => refuseUnhonoured(submitRequest({ sampling: sampling({ temperature: 1, minP: 0.1, topK: 3 }) }), LIMITED));
  const failure = workerFailure(t, err);
  t.is(failure.kind, WorkerErrorKind.WORKER_ERROR_KIND_INVALID_REQUEST);
  t.false(failure.retriable);
  t.is(failure.message, "the test engine cannot honour sampling.top_k, sampling.min_p (/sampling/top_k); it honours temperature, stop");
});

test("a chat is refused by an engine without a chat rendering, accepted by one with", (t) => {
  const chat = submitRequest({ prompt: "", messages: [{ role: "user", content: "hi" }] });
  t.regex(
    workerFailure(
      t,
      t.throws(() => refuseUnhonoured(chat, LIMITED)),
    ).message,
    /cannot render a chat \(\/messages\)/,
  );
  t.notThrows(() => refuseUnhonoured(chat, { ...LIMITED, chat: "template" }));
});

test("the JSON schema is parsed once, and refused when it is not a JSON object", (t) => {
  t.is(jsonSchemaOf(sampling({})), undefined);
  t.deepEqual(jsonSchemaOf(sampling({ jsonSchema: '{"type":"object"}' })), { type: "object" });
  t.regex(
    workerFailure(
      t,
      t.throws(() => jsonSchemaOf(sampling({ jsonSchema: "{nope" }))),
    ).message,
    /not JSON/,
  );
  t.regex(
    workerFailure(
      t,
      t.throws(() => jsonSchemaOf(sampling({ jsonSchema: "[1]" }))),
    ).message,
    /JSON Schema object/,
  );
});

test("logit biases become [token id, bias] pairs; a key that is no token id is refused", (t) => {
  t.deepEqual(logitBiasPairs(sampling({ logitBias: { "15043": -100, "7": 2.5 } })), [
    [7, 2.5],
    [15043, -100],
  ]);
  t.deepEqual(logitBiasPairs(undefined), []);
  t.regex(
    workerFailure(
      t,
      t.throws(() => logitBiasPairs(sampling({ logitBias: { Hello: 1 } }))),
    ).message,
    /token ids/,
  );
});

test("stops are requested only when the task lists some", (t) => {
  t.false(stopsRequested(submitRequest()));
  t.true(stopsRequested(submitRequest({ sampling: sampling({ stop: ["."] }) })));
});
