import test from "ava";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fanOut, ProgressReporter, type ProvisionProgress } from "../../../../workers/provision/progress.js";
import { formatBytes, progressLine, progressLogger, terminalProgress } from "../../../../workers/provision/progress-display.js";
import { bytesOf, GATED_REPO, GGUF_BYTES, GGUF_FILE, GGUF_REPO, HF_REPO, hubWorld } from "./provision-harness.js";

test("the reporter passes phase changes on at once and byte counts at most once per interval", (t) => {
  let now = 0;
  const heard: ProvisionProgress[] = [];
  const reporter = new ProgressReporter(
    (p) => heard.push(p),
    250,
    () => now,
  );
  reporter.phase("downloading", { file: "m.gguf", bytesTotal: 1_000_000 });
  for (let i = 1; i <= 1_000; i++) {
    now = i;
    reporter.bytes(i * 1_000, 1_000);
  }
  reporter.phase("verifying");
  reporter.phase("done");
  const bytesOnly = heard.filter((p) => p.phase === "downloading").length;
  t.true(bytesOnly <= 1 + Math.ceil(1_000 / 250), `${bytesOnly} reports over one second`);
  t.deepEqual(
    heard.map((p) => p.phase).filter((p, i, all) => all[i - 1] !== p),
    ["downloading", "verifying", "done"],
  );
  t.is(heard.at(-1)!.bytesDone, 1_000_000);
  t.true(
    heard.some((p) => p.bytesPerSecond > 900_000 && p.bytesPerSecond < 1_100_000),
    "1000 bytes a millisecond is about 1 MB/s",
  );
});

test("a real download reports few, monotonic updates in phase order, ending with done at the full size", async (t) => {
  const w = await hubWorld(t);
  w.fake.faults.chunkBytes = 4_000;
  w.fake.faults.chunkDelayMs = 5;
  const heard: ProvisionProgress[] = [];
  await w.provision(`hf:${GGUF_REPO}/${GGUF_FILE}`, { progressIntervalMs: 100, onProgress: (p) => heard.push(p) });
  const order = ["resolving", "downloading", "verifying", "done"];
  t.deepEqual(
    heard.map((p) => p.phase).filter((p, i, all) => all[i - 1] !== p),
    order,
  );
  for (let i = 1; i < heard.length; i++) t.true(heard[i]!.bytesDone >= heard[i - 1]!.bytesDone, "bytesDone never goes back");
  t.true(heard.length < GGUF_BYTES.length / 4_000, `${heard.length} reports for ${GGUF_BYTES.length / 4_000} chunks`);
  t.like(heard.at(-1), { phase: "done", bytesDone: GGUF_BYTES.length, bytesTotal: GGUF_BYTES.length });
  t.true(heard.some((p) => p.phase === "downloading" && p.bytesTotal === GGUF_BYTES.length && p.file === GGUF_FILE));
});

test("the log helper writes a line per phase and at most one per interval in between, and never the token", async (t) => {
  const w = await hubWorld(t);
  w.fake.faults.chunkBytes = 2_000;
  w.fake.faults.chunkDelayMs = 5;
  const lines: { fields: Record<string, unknown>; message: string }[] = [];
  const log = { info: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }) };
  const ref = `hf:${GATED_REPO}/model.gguf`;
  await w.provision(ref, { env: { HF_TOKEN: w.fake.token }, progressIntervalMs: 0, onProgress: progressLogger(log, ref, 60_000) });
  t.deepEqual(
    lines.map((l) => l.fields.phase),
    ["resolving", "downloading", "verifying", "done"],
  );
  t.like(lines[1]!.fields, { event: "model_provision_progress", model_ref: ref, file: "model.gguf" });
  t.regex(lines.at(-1)!.message, /ready \(19\.5 KiB\)/);
  t.false(JSON.stringify(lines).includes(w.fake.token));
});

test("the log helper's interval holds between phases", (t) => {
  let now = 0;
  const lines: string[] = [];
  const listener = progressLogger({ info: (_f, m) => lines.push(m) }, "hf:a/b/c.gguf", 5_000, () => now);
  const p: ProvisionProgress = {
    phase: "downloading",
    bytesDone: 0,
    bytesTotal: 100 * 1024 * 1024,
    bytesPerSecond: 1024 * 1024,
    file: "c.gguf",
  };
  for (now = 0; now <= 12_000; now += 250) listener({ ...p, bytesDone: now * 1024 });
  t.is(lines.length, 3, "at 0, 5 and 10 seconds");
  t.regex(lines[1]!, /^hf:a\/b\/c\.gguf: downloading c\.gguf: 4% \(4\.9 MiB of 100\.0 MiB\), 1\.0 MiB\/s$/);
});

test("the terminal bar redraws one line on a TTY, ends it at done, and writes nothing elsewhere", (t) => {
  const writes: string[] = [];
  const tty = terminalProgress({ isTTY: true, columns: 100, write: (s: string) => writes.push(s) });
  const p: ProvisionProgress = {
    phase: "downloading",
    bytesDone: 512 * 1024 * 1024,
    bytesTotal: 1024 * 1024 * 1024,
    bytesPerSecond: 32 * 1024 * 1024,
    file: "model.gguf",
  };
  tty(p);
  tty({ ...p, phase: "done", bytesDone: p.bytesTotal! });
  t.true(writes[0]!.startsWith("\rdownloading model.gguf ["));
  t.true(writes[0]!.endsWith(" 50%  512.0 MiB / 1.0 GiB  32.0 MiB/s  ETA 16s\x1b[K"), JSON.stringify(writes[0]));
  t.true(writes[1]!.endsWith("\n"));
  const piped: string[] = [];
  const pipe = terminalProgress({ isTTY: false, write: (s: string) => piped.push(s) });
  pipe(p);
  t.deepEqual(piped, []);
});

test("the progress line fits the terminal and copes with an unknown size", (t) => {
  const line = progressLine(
    {
      phase: "downloading",
      bytesDone: 5_000,
      bytesTotal: undefined,
      bytesPerSecond: 0,
      file: "a/very/long/path/to/some/model-file-name.gguf",
    },
    40,
  );
  t.true(line.length <= 39, line);
  t.false(line.includes("%"));
  t.is(formatBytes(1023), "1023 B");
  t.is(formatBytes(1536), "1.5 KiB");
});

test("fanOut calls every listener even when one throws", (t) => {
  const heard: string[] = [];
  const listener = fanOut([
    () => {
      throw new Error("display bug");
    },
    (p) => heard.push(p.phase),
  ]);
  listener({ phase: "done", bytesDone: 1, bytesTotal: 1, bytesPerSecond: 0, file: undefined });
  t.deepEqual(heard, ["done"]);
});

test("a repository's progress counts all its files, never going back, those found in the hub cache included", async (t) => {
  const w = await hubWorld(t);
  const commit = w.fake.commitOf(HF_REPO);
  const snapshot = path.join(w.env.HF_HOME!, "hub", "models--TinyOrg--tiny-chat-hf", "snapshots", commit);
  await mkdir(snapshot, { recursive: true });
  await writeFile(path.join(snapshot, "model.safetensors"), bytesOf(64_000, "safetensors"));
  const heard: ProvisionProgress[] = [];
  const got = await w.provision(`hf:${HF_REPO}`, { progressIntervalMs: 0, onProgress: (p) => heard.push(p) });
  for (let i = 1; i < heard.length; i++) t.true(heard[i]!.bytesDone >= heard[i - 1]!.bytesDone, `report ${i} goes back`);
  t.true(heard.filter((p) => p.phase !== "resolving").every((p) => p.bytesTotal === got.sizeBytes));
  t.like(heard.at(-1), { phase: "done", bytesDone: got.sizeBytes });
});
