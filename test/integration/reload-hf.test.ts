import test, { type ExecutionContext } from "ava";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import { demoModelGguf } from "../../workers/gguf/demo-model.js";
import { HfHubFake } from "../fakes/hf-hub-fake.js";
import { api, stream, taskBody } from "../support/http.js";
import type { Json } from "../support/json.js";
import { TestSystem, type WorkerSpec } from "../support/system.js";

// Issue 10's whole path through the public API: POST /v1/pools/{id}/reload onto
// hf: models a (fake) Hugging Face hub serves, with real sidecar processes
// running the embedded engine and a supervised engine process (the llama.cpp
// fake). Edge and core decide, the sidecars download into the model cache and
// switch; a cut download resumes, a digest the catalog does not vouch for rolls
// back as UNTRUSTED_ARTIFACT, a gated repository without a token leaves the pool
// on its model.

const REPO = "DemoOrg/demo-GGUF";
const GATED = "GatedOrg/gated-GGUF";
const gguf = (seed: number) => Buffer.concat(demoModelGguf({ seed, endsGenerations: false }));
const BYTES = { a: gguf(41), b: gguf(42), c: gguf(43), g: gguf(44) };
const ref = (file: string, repo = REPO) => `hf:${repo}/${file}`;
const FAKE_LLAMACPP = join(projectRoot(), "test", "fakes", "llamacpp-fake-process.ts");
const sha = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex")}`;

async function hubWorld(t: ExecutionContext): Promise<{ hub: HfHubFake; env: NodeJS.ProcessEnv; cache: string }> {
  const hub = await HfHubFake.start([
    {
      id: REPO,
      files: [
        { path: "a.gguf", content: BYTES.a },
        { path: "b.gguf", content: BYTES.b },
        { path: "c.gguf", content: BYTES.c },
      ],
    },
    { id: GATED, gated: true, files: [{ path: "g.gguf", content: BYTES.g }] },
  ]);
  const dir = mkdtempSync(join(tmpdir(), "llorch-reload-"));
  t.teardown(async () => {
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { hub, cache: join(dir, "models"), env: { HF_ENDPOINT: hub.url, HOME: dir, HF_HOME: join(dir, "hf-home"), HF_TOKEN: "" } };
}

async function poolUntil(t: ExecutionContext, sys: TestSystem, done: (h: Json) => boolean, what: string): Promise<Json> {
  let last: Json;
  for (let i = 0; i < 600; i++) {
    last = (await api(t, sys.edgeUrl, "GET", "/v1/pools/default/health")).json;
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the pool never ${what}: ${JSON.stringify(last)}`);
}

async function reload(t: ExecutionContext, sys: TestSystem, modelRef: string): Promise<Json> {
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/pools/default/reload", { body: { new_model_ref: modelRef } })).status, 202);
  return poolUntil(
    t,
    sys,
    (h) => h.metrics.reload_state === "idle" && (h.metrics.model_ref === modelRef || Boolean(h.metrics.last_reload_error)),
    `reloaded onto ${modelRef}`,
  );
}

async function completes(t: ExecutionContext, sys: TestSystem, modelRef: string): Promise<void> {
  const body = taskBody({ model_ref: modelRef, max_tokens: 4, ctx: 256 });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body })).status, 202);
  const s = await stream(sys.edgeUrl, `/v1/tasks/${String(body.task_id)}/stream`);
  await s.done;
  t.is(s.events.at(-1)?.event, "end", JSON.stringify(s.events.at(-1)));
}

async function reloadStory(t: ExecutionContext, worker: (w: Awaited<ReturnType<typeof hubWorld>>) => WorkerSpec): Promise<void> {
  const w = await hubWorld(t);
  const sys = await TestSystem.start({ coreEnv: w.env, coreFlags: { "model-cache": w.cache }, workers: [worker(w)] });
  t.teardown(() => sys.stop());
  await completes(t, sys, ref("a.gguf"));

  // A download cut half-way goes on from where it was.
  w.hub.faults = { ...w.hub.faults, cutAfterBytes: 100_000, cuts: 1 };
  const onB = await reload(t, sys, ref("b.gguf"));
  t.is(onB.metrics.model_ref, ref("b.gguf"), JSON.stringify(onB.metrics.last_reload_error));
  t.true(
    w.hub.requests.some((r) => r.server === "cdn" && r.headers.range === "bytes=100000-"),
    "resumed after the cut",
  );
  await completes(t, sys, ref("b.gguf"));

  // The catalog vouches for other bytes than the hub serves: rolled back, recorded, refused.
  const digest = sha("the weights the catalog vouches for");
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/catalog/models", { body: { id: "c", digest, source_url: ref("c.gguf") } })).status, 201);
  const mismatch = await reload(t, sys, ref("c.gguf"));
  t.is(mismatch.metrics.model_ref, ref("b.gguf"), "rolled back onto the model it served");
  t.regex(String(mismatch.metrics.last_reload_error), /digest mismatch/);
  t.like((await api(t, sys.edgeUrl, "GET", "/v1/catalog/models/c")).json.verification, { status: "failed", reason: "digest_mismatch" });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: ref("c.gguf") }) })).json.code, "UNTRUSTED_ARTIFACT");

  // A gated repository and no token: the pool stays on its model and says why.
  const gated = await reload(t, sys, ref("g.gguf", GATED));
  t.is(gated.metrics.model_ref, ref("b.gguf"));
  t.regex(String(gated.metrics.last_reload_error), /gated.*HF_TOKEN/);
  // Readiness comes on the replica's own health stream, which may trail the reload's end by a moment.
  const back = await poolUntil(t, sys, (h) => h.ready === true, "was ready again");
  t.is(back.metrics.model_ref, ref("b.gguf"), "ready again on the model it kept");
  await completes(t, sys, ref("b.gguf"));
}

test.serial("reload onto hf: models through the public API, embedded engine: resume, digest mismatch, gated repo", (t) =>
  reloadStory(t, (w) => ({
    model: ref("a.gguf"),
    engine: "llamacpp",
    env: w.env,
    slots: 1,
    flags: { "model-cache": w.cache, "ctx-max": "256", threads: "1", gpu: "off" },
  })),
);

test.serial("reload onto hf: models through the public API, supervised engine process: resume, digest mismatch, gated repo", (t) =>
  reloadStory(t, (w) => ({
    model: ref("a.gguf"),
    engine: "llamacpp",
    env: w.env,
    slots: 1,
    flags: {
      "model-cache": w.cache,
      "engine-cmd": `${process.execPath} --import tsx ${FAKE_LLAMACPP} --port {port} -m {model_path} --load-ms 200`,
    },
  })),
);
