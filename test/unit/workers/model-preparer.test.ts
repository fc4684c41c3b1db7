import test from "ava";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { demoModelGguf } from "../../../workers/gguf/demo-model.js";
import { ProvisionError } from "../../../workers/provision/provision-error.js";
import { ModelPreparer } from "../../../workers/sidecar/model-preparer.js";
import { logCapture } from "../../support/log-capture.js";
import { HfHubFake } from "../../fakes/hf-hub-fake.js";
import { sha256Hex, tempDir } from "./provision/provision-harness.js";

const GGUF = Buffer.concat(demoModelGguf({ seed: 41 }));

async function setup(t: Parameters<typeof tempDir>[0], isTTY: boolean) {
  const hub = await HfHubFake.start([{ id: "DemoOrg/demo-GGUF", files: [{ path: "m.gguf", content: GGUF }] }]);
  t.teardown(() => hub.close());
  hub.faults = { ...hub.faults, chunkBytes: 64 * 1024, chunkDelayMs: 5 };
  const dir = await tempDir(t);
  const { logger, lines } = logCapture();
  const drawn: string[] = [];
  const preparer = new ModelPreparer({
    cacheDir: path.join(dir, "models"),
    baseDir: dir,
    env: { HF_ENDPOINT: hub.url, HOME: dir, HF_HOME: path.join(dir, "hf") },
    logger,
    terminal: { isTTY, columns: 100, write: (text: string) => drawn.push(text) },
  });
  return { hub, dir, preparer, lines, drawn };
}

test("an hf: GGUF is downloaded into the cache: its path, digest and memory facts, progress to the caller, the log and the terminal", async (t) => {
  const { preparer, lines, drawn } = await setup(t, true);
  const phases: string[] = [];
  const model = await preparer.prepare("hf:DemoOrg/demo-GGUF/m.gguf", { onProgress: (p) => phases.push(p.phase) });
  t.regex(model.path!, /snapshots\/hf\/DemoOrg--demo-GGUF\/[0-9a-f]+\/m\.gguf$/);
  t.is(model.digest, `sha256:${sha256Hex(GGUF)}`);
  t.like(model.memory, { weightsBytes: GGUF.length, architecture: "llama" });
  t.deepEqual([...new Set(phases)], ["resolving", "downloading", "verifying", "done"]);
  t.true(
    lines.some((l) => l.event === "model_provision_progress" && l.phase === "downloading"),
    "a log line while downloading",
  );
  t.like(
    lines.find((l) => l.event === "model_provisioned"),
    { model_ref: "hf:DemoOrg/demo-GGUF/m.gguf", source: "download", verified: true },
  );
  t.true(
    drawn.some((d) => d.startsWith("\rdownloading m.gguf [")),
    "a bar on the terminal",
  );
  t.true(drawn.at(-1)!.endsWith("\n"), "the bar's line ends when done");
});

test("no bar when stderr is not a terminal", async (t) => {
  const { preparer, drawn } = await setup(t, false);
  await preparer.prepare("hf:DemoOrg/demo-GGUF/m.gguf");
  t.deepEqual(drawn, []);
});

test("a local file is used where it is, unhashed unless a digest must be checked", async (t) => {
  const { preparer, dir } = await setup(t, false);
  const file = path.join(dir, "local.gguf");
  await writeFile(file, GGUF);
  const plain = await preparer.prepare("file:local.gguf");
  t.like(plain, { path: file, digest: undefined, expectedDigest: undefined });
  t.is(plain.memory?.weightsBytes, GGUF.length);
  const digest = `sha256:${sha256Hex(GGUF)}`;
  t.like(await preparer.prepare(`file:${file}`, { expectedDigest: digest }), { path: file, digest, expectedDigest: digest });
  const wrong = await t.throwsAsync(preparer.prepare(`file:${file}`, { expectedDigest: `sha256:${"0".repeat(64)}` }));
  t.true(wrong instanceof ProvisionError && wrong.kind === "digest_mismatch");
  await t.throwsAsync(preparer.prepare("file:missing.gguf"), { message: `${path.join(dir, "missing.gguf")} does not exist` });
});

test("a file that is not a GGUF has no memory facts: the fit check has nothing to go on", async (t) => {
  const { preparer, dir } = await setup(t, false);
  await writeFile(path.join(dir, "weights.bin"), Buffer.alloc(4096, 1));
  t.is((await preparer.prepare("file:weights.bin")).memory, undefined);
});
