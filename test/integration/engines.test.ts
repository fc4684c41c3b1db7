import test from "ava";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import { api, assertStreamConforms, stream, taskBody } from "../support/http.js";
import { TestSystem } from "../support/system.js";
import type { FakeRequest } from "../fakes/fake-http.js";
import { startFakeLlamaCpp } from "../fakes/llamacpp-fake.js";
import { startFakeOpenAi, startFakeVllm } from "../fakes/openai-fake.js";
import { startFakeTgi } from "../fakes/tgi-fake.js";
import { startFakeTriton } from "../fakes/triton-fake.js";

/** What this test needs of a fake engine; every fake in test/fakes/ has it. */
interface FakeEngine {
  url: string;
  setBehaviour(patch: { frameDelayMs: number }): void;
  generations(): FakeRequest[];
  close(): Promise<void>;
}

const ENGINES: { engine: string; engineModel?: string; tokens: string[]; start(tokens: string[]): Promise<FakeEngine> }[] = [
  { engine: "llamacpp", tokens: ["Hola", " señor", " 🦙", "!"], start: (tokens) => startFakeLlamaCpp({ tokens }) },
  { engine: "vllm", engineModel: "fake-model", tokens: ["Hello", ",", " wörld", " 日本"], start: (tokens) => startFakeVllm({ tokens }) },
  { engine: "openai", engineModel: "fake-model", tokens: ["Bonjour", " à", " tous"], start: (tokens) => startFakeOpenAi({ tokens }) },
  { engine: "tgi", tokens: ["Guten", " Tag", " naïve", " 🦙"], start: (tokens) => startFakeTgi({ tokens }) },
  { engine: "triton", engineModel: "ensemble", tokens: ["Ciao", " a", " tutti"], start: (tokens) => startFakeTriton({ tokens }) },
];

for (const spec of ENGINES) {
  test(`edge -> core -> sidecar -> ${spec.engine}: tokens stream end to end, and cancel closes the engine request`, async (t) => {
    const fake = await spec.start(spec.tokens);
    t.teardown(() => fake.close());
    /** Whether the most recent generation's connection was closed by the sidecar before it finished. */
    const lastClosedByClient = (): boolean => fake.generations().at(-1)!.closedByClient;
    const model = spec.engineModel ?? "hf:org/e2e";
    const sys = await TestSystem.start({
      workers: [
        {
          replica: `${spec.engine}-1`,
          engine: spec.engine,
          model,
          slots: 2,
          flags: { "engine-url": fake.url, "serves-any-model": "false", ...(spec.engineModel ? { "engine-model": spec.engineModel } : {}) },
        },
      ],
    });
    t.teardown(() => sys.stop());

    const body = taskBody({ engine: spec.engine, model_ref: model, max_tokens: 50, ctx: 1024, prompt: "say hello" });
    const admitted = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body });
    t.is(admitted.status, 202, admitted.text);
    const path = `/v1/tasks/${body.task_id}/stream`;
    const s = await stream(sys.edgeUrl, path);
    await s.done;
    assertStreamConforms(t, path, s);
    t.deepEqual(
      s.events.filter((e) => e.event === "token").map((e) => e.data.t),
      spec.tokens,
      "the engine's tokens, byte for byte",
    );
    t.is(s.events.at(-1)!.event, "end");
    const placed = s.events.find((e) => e.event === "metrics" && e.data.replica_id);
    t.is(placed?.data.replica_id, `${spec.engine}-1`);

    // Cancel mid-stream: the sidecar must close its request to the engine.
    fake.setBehaviour({ frameDelayMs: 300 });
    const slow = taskBody({ engine: spec.engine, model_ref: model, max_tokens: 50, ctx: 1024, prompt: "slowly" });
    t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: slow })).status, 202);
    const s2 = await stream(sys.edgeUrl, `/v1/tasks/${slow.task_id}/stream`);
    await s2.waitFor(1, "token");
    t.is((await api(t, sys.edgeUrl, "POST", `/v1/tasks/${slow.task_id}/cancel`)).status, 204);
    await s2.done;
    t.is(s2.events.at(-1)!.data.stop_reason, "canceled");
    for (let i = 0; i < 40 && !lastClosedByClient(); i++) await new Promise((r) => setTimeout(r, 50));
    t.true(lastClosedByClient(), "the engine saw its connection closed");
  });
}

test("a supervised engine: the sidecar starts it, is Ready only after its preload, and restarts it when it dies", async (t) => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const pidFile = join(mkdtempSync(join(tmpdir(), "llorch-engine-")), "pid");
  const script = join(projectRoot(), "test", "fakes", "llamacpp-fake-process.ts");
  const sys = await TestSystem.start({
    workers: [
      {
        replica: "supervised",
        engine: "llamacpp",
        model: "hf:org/e2e",
        flags: {
          "engine-url": `http://127.0.0.1:${port}`,
          "engine-cmd": `${process.execPath} --import tsx ${script} --port ${port} --pid-file ${pidFile} --load-ms 500`,
          "serves-any-model": "false",
        },
      },
    ],
  });
  t.teardown(() => sys.stop());
  const run = async () => {
    const body = taskBody({ engine: "llamacpp", model_ref: "hf:org/e2e", max_tokens: 10, ctx: 1024 });
    t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
    const s = await stream(sys.edgeUrl, `/v1/tasks/${body.task_id}/stream`);
    await s.done;
    return s.events;
  };
  t.is((await run()).at(-1)!.event, "end", "served once the supervised engine finished loading");

  process.kill(Number(readFileSync(pidFile, "utf8")), "SIGKILL");
  // The replica leaves placement while its engine is down, then comes back after the restart.
  let health = await api(t, sys.edgeUrl, "GET", "/v1/pools/default/health");
  for (let i = 0; i < 100 && health.json.metrics.replicas[0]?.ready !== false; i++) {
    await new Promise((r) => setTimeout(r, 50));
    health = await api(t, sys.edgeUrl, "GET", "/v1/pools/default/health");
  }
  t.false(health.json.ready, "not Ready while the engine is down");
  await sys.waitForReadyReplicas(1, 30_000);
  t.is((await run()).at(-1)!.event, "end", "served again after the restart");
  t.true(sys.logsOf(sys.worker("supervised").proc, "engine_exited").length > 0, "the sidecar logged the crash");
});
