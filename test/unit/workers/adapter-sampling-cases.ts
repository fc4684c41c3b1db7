// The sampling and chat half of the adapter conformance table
// (adapter-conformance.ts): what features announce, set parameters reaching
// the engine under its own names, the refusal of what it cannot honour
// before anything is sent, a matched stop string, and a chat.
import test from "ava";
import { StopReason } from "../../../contracts/gen/llama_orch/v1/common.js";
import { WorkerErrorKind as K } from "../../../contracts/gen/llama_orch/v1/worker.js";
import type { AnySpec, SamplingSpec } from "./adapter-conformance.js";
import { setUp } from "./adapter-harness.js";
import { collect, submitRequest, workerFailure } from "./helpers.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- like AnySpec: the fake's types differ per engine
type AnySampling = SamplingSpec<any, any>;

function announcesWhatItHonours(spec: AnySpec, sampling: AnySampling): void {
  test("features list the sampling fields the adapter honours, and how it chats (or no chat)", async (t) => {
    const { adapter } = await setUp(t, spec, sampling.fake);
    const { features } = adapter.info();
    t.is(features.sampling, sampling.features.sampling);
    t.is(features.chat, sampling.features.chat);
  });
}

function passesParameters(spec: AnySpec, sampling: AnySampling): void {
  test("every sampling parameter it honours reaches the engine, under the engine's own names", async (t) => {
    const c = sampling.passes;
    const { fake, adapter } = await setUp(t, spec, sampling.fake);
    const out = await collect(adapter, submitRequest(c.request));
    t.is(out.error, undefined);
    const [req] = fake.generations();
    if (c.engineRequest.path !== undefined) t.is(req!.path, c.engineRequest.path);
    t.like(req!.body, c.engineRequest.body as Record<string, unknown>);
    c.check?.(t, req!.body);
  });
}

function refusesTheRest(spec: AnySpec, sampling: AnySampling): void {
  test("a parameter it cannot honour, or a malformed one, is refused INVALID_REQUEST before anything is sent", async (t) => {
    const { fake, adapter } = await setUp(t, spec, sampling.fake);
    for (const row of sampling.refused) {
      const out = await collect(adapter, submitRequest(row.request));
      const failure = workerFailure(t, out.error);
      const at = JSON.stringify(row.request);
      t.is(failure.kind, K.WORKER_ERROR_KIND_INVALID_REQUEST, at);
      t.false(failure.retriable, at);
      t.regex(failure.message, row.message, at);
      t.is(out.started, undefined, at);
    }
    t.deepEqual(
      fake.requests.filter((r) => r.method === "POST"),
      [],
      "nothing reached the engine",
    );
  });
}

function endsAtAStopString(spec: AnySpec, sampling: AnySampling): void {
  test("a matched stop string ends STOP, and the stop string is not part of the output", async (t) => {
    const c = sampling.stop;
    const { adapter } = await setUp(t, spec, c.fake ?? sampling.fake);
    const out = await collect(adapter, submitRequest(c.request));
    t.is(out.error, undefined);
    t.is(out.result?.stopReason, StopReason.STOP_REASON_STOP);
    t.is(out.texts.join(""), c.text);
    for (const stop of c.request.sampling?.stop ?? []) t.false(out.texts.join("").includes(stop));
  });
}

function chats(spec: AnySpec, sampling: AnySampling): void {
  const c = sampling.chat;
  if (!c) return;
  test("a chat is rendered by the engine's own chat template, and streams like any generation", async (t) => {
    const { fake, adapter } = await setUp(t, spec, sampling.fake);
    const out = await collect(adapter, submitRequest(c.request));
    t.is(out.error, undefined);
    t.deepEqual(out.texts, c.tokens);
    t.is(out.result?.stopReason, StopReason.STOP_REASON_EOS);
    c.check(t, fake);
  });
}

const CASES = [announcesWhatItHonours, passesParameters, refusesTheRest, endsAtAStopString, chats];

export function registerSamplingCases(spec: AnySpec): void {
  for (const register of CASES) register(spec, spec.sampling);
}
