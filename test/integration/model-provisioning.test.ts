import test, { type ExecutionContext } from "ava";
import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { SubmitRequest, type WatchHealthResponse } from "../../contracts/gen/llama_orch/v1/worker.js";
import { errorDetailOf } from "../../contracts/runtime/error-status.js";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import { demoModelGguf } from "../../workers/gguf/demo-model.js";
import { formatBytes } from "../../workers/provision/progress-display.js";
import { HfHubFake } from "../fakes/hf-hub-fake.js";
import { startSidecar, type SidecarProcess } from "../support/sidecar-process.js";

// A sidecar pointed at models on a (fake) Hugging Face hub: it downloads them
// into its model cache with progress on WatchHealth, serves them, and
// switches between them on LoadModel, with the embedded engine and with a
// supervised engine process (the llama.cpp fake, started with -m {model_path}).
// The sidecar runs as a real process, called over gRPC directly. Serial: each
// test starts engines of its own, and the machine has two cores.

const REPO = "DemoOrg/demo-GGUF";
const GATED = "GatedOrg/gated-GGUF";
const gguf = (seed: number) => Buffer.concat(demoModelGguf({ seed, endsGenerations: false }));
const BYTES = { a: gguf(31), b: gguf(32), c: gguf(33), g: gguf(34), junk: Buffer.alloc(300_000, 7) };
const ref = (file: string, repo = REPO) => `hf:${repo}/${file}`;
const sha = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
/** What a catalog could expect that no file here has (a digest some file has is served from the cache by that digest). */
const WRONG_DIGEST = sha(Buffer.from("not any model's bytes"));
const FAKE_LLAMACPP = join(projectRoot(), "test", "fakes", "llamacpp-fake-process.ts");

interface World {
  hub: HfHubFake;
  dir: string;
  /** HF_ENDPOINT at the fake hub, HOME and HF_HOME in a temp directory, no token. */
  env: NodeJS.ProcessEnv;
  cache: string;
}

async function world(t: ExecutionContext): Promise<World> {
  const hub = await HfHubFake.start([
    {
      id: REPO,
      files: [
        { path: "a.gguf", content: BYTES.a },
        { path: "b.gguf", content: BYTES.b },
        { path: "c.gguf", content: BYTES.c },
        { path: "junk.gguf", content: BYTES.junk },
      ],
    },
    { id: GATED, gated: true, files: [{ path: "g.gguf", content: BYTES.g }] },
  ]);
  const dir = mkdtempSync(join(tmpdir(), "llorch-provisioning-"));
  t.teardown(async () => {
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { hub, dir, cache: join(dir, "models"), env: { HF_ENDPOINT: hub.url, HOME: dir, HF_HOME: join(dir, "hf-home"), HF_TOKEN: "" } };
}

const embeddedFlags = (w: World, model: string) => ({
  model,
  "model-cache": w.cache,
  slots: "1",
  "ctx-max": "256",
  threads: "1",
  gpu: "off",
});

const fakeEngineCmd = (port: string) => `${process.execPath} --import tsx ${FAKE_LLAMACPP} --port ${port} -m {model_path} --load-ms 200`;

const isReady = (m: WatchHealthResponse) => m.health?.ready === true;

async function completes(t: ExecutionContext, sidecar: SidecarProcess, taskId: string): Promise<void> {
  const events = await sidecar.submit(
    SubmitRequest.fromPartial({ taskId, sessionId: taskId, prompt: "tell me about llamas", maxTokens: 4 }),
  );
  t.is(events.at(-1)?.event?.$case, "end", JSON.stringify(events.at(-1)));
}

function failureOf(p: Promise<unknown>): Promise<ServiceError> {
  return p.then(
    () => Promise.reject(new Error("expected the call to fail")),
    (err: ServiceError) => err,
  );
}

/** The engine URL of every supervised instance the sidecar started, in order. */
const engineUrls = (s: SidecarProcess) => s.events("engine_instance").map((e) => e.engine_url as string);

async function modelPathServed(url: string): Promise<string> {
  return ((await (await fetch(`${url}/props`)).json()) as { model_path: string }).model_path;
}

async function gone(url: string): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (
      !(await fetch(`${url}/health`).then(
        () => true,
        () => false,
      ))
    )
      return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

test.serial("a worker on an hf: GGUF downloads it with progress on WatchHealth, then serves it (embedded engine)", async (t) => {
  const w = await world(t);
  // Slow enough that the download spans several progress reports.
  w.hub.faults = { ...w.hub.faults, chunkBytes: 32 * 1024, chunkDelayMs: 40 };
  const sidecar = await startSidecar(t, embeddedFlags(w, ref("a.gguf")), w.env);
  const seen = await sidecar.watchHealthUntil(isReady);
  const downloading = seen.filter((m) => m.load?.progress?.phase === "downloading");
  t.true(downloading.length >= 2, `progress reports while downloading: ${JSON.stringify(seen.map((m) => m.health?.lastError))}`);
  t.like(downloading.at(-1)!.load!.progress, { bytesTotal: BYTES.a.length, subject: "a.gguf" });
  t.true(downloading.every((m) => m.health?.live === true && m.health.ready === false));
  const sentence = downloading.at(-1)!.health!.lastError;
  t.true(sentence.startsWith(`downloading ${ref("a.gguf")}: `), sentence);
  t.regex(sentence, new RegExp(`: \\d+% \\(.+ of ${formatBytes(BYTES.a.length).replace(".", "\\.")}(, .+/s)?\\)$`));
  t.like(seen.at(-1), { health: { live: true, ready: true, lastError: "" }, load: undefined });
  t.like(await sidecar.info(), { modelRef: ref("a.gguf"), modelDigest: sha(BYTES.a), adapter: "llamacpp-embedded" });
  await completes(t, sidecar, "t1");
  t.true(sidecar.events("model_provision_progress").length >= 2, "progress is logged");
  t.true(existsSync(join(w.cache, "blobs", sha(BYTES.a).slice("sha256:".length))), "in the model cache, by its sha256");
});

test.serial(
  "LoadModel on the embedded engine: another hf: model, resumed after a cut; a digest mismatch and a gated repo leave it serving",
  async (t) => {
    const w = await world(t);
    const sidecar = await startSidecar(t, embeddedFlags(w, ref("a.gguf")), w.env);
    await sidecar.watchHealthUntil(isReady);

    w.hub.faults = { ...w.hub.faults, cutAfterBytes: 200_000, cuts: 1 };
    t.deepEqual(await sidecar.loadModel(ref("b.gguf")), {
      modelRef: ref("b.gguf"),
      modelDigest: sha(BYTES.b),
      engineVersion: (await sidecar.info()).engineVersion,
    });
    t.true(
      w.hub.requests.some((r) => r.server === "cdn" && r.headers.range === "bytes=200000-"),
      "the cut download went on from where it was",
    );
    await completes(t, sidecar, "t1");

    const mismatch = await failureOf(sidecar.loadModel(ref("c.gguf"), WRONG_DIGEST));
    t.is(mismatch.code, GrpcStatus.FAILED_PRECONDITION);
    t.regex(
      mismatch.details,
      /^failed to load hf:DemoOrg\/demo-GGUF\/c\.gguf: digest mismatch: .*; still serving hf:DemoOrg\/demo-GGUF\/b\.gguf$/,
    );
    t.is(errorDetailOf(mismatch)?.code, ErrorCode.ERROR_CODE_UNTRUSTED_ARTIFACT);

    const gated = await failureOf(sidecar.loadModel(ref("g.gguf", GATED)));
    t.is(gated.code, GrpcStatus.FAILED_PRECONDITION);
    t.regex(gated.details, /^failed to load hf:GatedOrg\/gated-GGUF\/g\.gguf: not authorized: the repository is gated .*set HF_TOKEN/);
    t.is(errorDetailOf(gated), undefined);

    t.like(await sidecar.info(), { modelRef: ref("b.gguf"), modelDigest: sha(BYTES.b) });
    t.like((await sidecar.health()).health, { live: true, ready: true, lastError: gated.details });
    await completes(t, sidecar, "t2");
  },
);

test.serial(
  "LoadModel on a supervised engine: a second instance on a new port, traffic switched, the old one stopped; failures roll back",
  async (t) => {
    const w = await world(t);
    const sidecar = await startSidecar(
      t,
      { model: ref("a.gguf"), "model-cache": w.cache, engine: "llamacpp", "engine-cmd": fakeEngineCmd("{port}"), slots: "1" },
      { ...w.env, HF_TOKEN: w.hub.token },
    );
    await sidecar.watchHealthUntil(isReady);
    const [first] = engineUrls(sidecar);
    t.regex(await modelPathServed(first!), /\/snapshots\/hf\/DemoOrg--demo-GGUF\/[0-9a-f]+\/a\.gguf$/, "the engine got the cached file");
    t.like(await sidecar.info(), { modelRef: ref("a.gguf"), modelDigest: sha(BYTES.a), adapter: "llamacpp" });
    await completes(t, sidecar, "t1");

    w.hub.faults = { ...w.hub.faults, cutAfterBytes: 100_000, cuts: 1 };
    t.like(await sidecar.loadModel(ref("b.gguf")), { modelRef: ref("b.gguf"), modelDigest: sha(BYTES.b) });
    t.true(
      w.hub.requests.some((r) => r.server === "cdn" && r.headers.range === "bytes=100000-"),
      "resumed after the cut",
    );
    const second = engineUrls(sidecar)[1]!;
    t.not(second, first);
    t.regex(await modelPathServed(second), /\/b\.gguf$/);
    t.like(sidecar.events("model_switch_plan").at(-1), { action: "beside", model_ref: ref("b.gguf"), running_model_ref: ref("a.gguf") });
    t.true(await gone(first!), "the old engine was stopped");
    await completes(t, sidecar, "t2");

    const mismatch = await failureOf(sidecar.loadModel(ref("c.gguf"), WRONG_DIGEST));
    t.regex(mismatch.details, /digest mismatch/);
    t.is(errorDetailOf(mismatch)?.code, ErrorCode.ERROR_CODE_UNTRUSTED_ARTIFACT);
    t.is(engineUrls(sidecar).length, 2, "no engine started for it");

    t.like(await sidecar.loadModel(ref("g.gguf", GATED)), { modelRef: ref("g.gguf", GATED) }, "HF_TOKEN opens the gated repository");
    t.true(w.hub.requests.some((r) => r.server === "hub" && r.path.includes(GATED) && r.headers.authorization === `Bearer ${w.hub.token}`));

    // Not a GGUF: its memory need is unknown, so the running engine is stopped first; the new one exits, the old comes back.
    const junk = await failureOf(sidecar.loadModel(ref("junk.gguf")));
    t.regex(junk.details, /^failed to load hf:DemoOrg\/demo-GGUF\/junk\.gguf: engine exited with code 1.*not a GGUF file/s);
    t.regex(
      junk.details,
      /\(hf:GatedOrg\/gated-GGUF\/g\.gguf was stopped first and serves again\); still serving hf:GatedOrg\/gated-GGUF\/g\.gguf$/,
    );
    t.like(sidecar.events("model_switch_plan").at(-1), { action: "stop-first" });
    t.like(await sidecar.info(), { modelRef: ref("g.gguf", GATED) });
    t.true((await sidecar.health()).health!.ready);
    await completes(t, sidecar, "t3");
    t.false(
      sidecar.proc.lines.some((l) => l.includes(w.hub.token)),
      "the token is never logged",
    );
  },
);

test.serial(
  "a command without {port} stops the old engine first; --model-ttl unloads an idle model and the next Submit loads it again",
  async (t) => {
    const w = await world(t);
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const url = `http://127.0.0.1:${port}`;
    const sidecar = await startSidecar(
      t,
      {
        model: ref("a.gguf"),
        "model-cache": w.cache,
        engine: "llamacpp",
        "engine-url": url,
        "engine-cmd": fakeEngineCmd(String(port)),
        slots: "1",
        "model-ttl": "2500",
      },
      w.env,
    );
    await sidecar.watchHealthUntil(isReady);
    await sidecar.loadModel(ref("b.gguf"));
    const plan = sidecar.events("model_switch_plan").at(-1)!;
    t.like(plan, { action: "stop-first", running_model_ref: ref("a.gguf") });
    t.regex(
      plan.reason as string,
      /^the engine command has no \{port\}: a second instance would need the running one's port, so hf:DemoOrg\/demo-GGUF\/a\.gguf is stopped first/,
    );
    t.regex(await modelPathServed(url), /\/b\.gguf$/);

    const unloaded = await sidecar.watchHealthUntil((m) => m.load?.wakesOnSubmit === true);
    t.like(unloaded.at(-1), {
      health: { live: true, ready: false, lastError: "unloaded after 2.5 s idle; the next task loads it" },
      load: { wakesOnSubmit: true },
    });
    t.true(await gone(url), "the engine process was stopped");
    await completes(t, sidecar, "after-idle");
    t.like(await sidecar.health(), { health: { ready: true }, load: undefined });
    t.regex(await modelPathServed(url), /\/b\.gguf$/, "the same model, loaded again");
    t.is(sidecar.events("model_unloaded").length, 1);
    t.is(sidecar.events("model_reloaded").length, 1);
  },
);
