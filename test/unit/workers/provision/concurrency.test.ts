import test from "ava";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ModelCache } from "../../../../workers/provision/model-cache.js";
import { resolveUrl } from "../../../../workers/provision/hub-protocol.js";
import { ProvisionError } from "../../../../workers/provision/provision-error.js";
import type { ProvisionProgress } from "../../../../workers/provision/progress.js";
import { GGUF_BYTES, GGUF_FILE, GGUF_REPO, hubWorld, type HubWorld } from "./provision-harness.js";

const REF = `hf:${GGUF_REPO}/${GGUF_FILE}`;
const CHILD = fileURLToPath(new URL("./provision-child.ts", import.meta.url));

function slow(w: HubWorld): void {
  w.fake.faults.chunkBytes = 20_000;
  w.fake.faults.chunkDelayMs = 40;
}

function lockOf(w: HubWorld): string {
  return new ModelCache(w.cacheDir).lockPath(`hf-file ${resolveUrl(w.fake.url, GGUF_REPO, "main", GGUF_FILE)}`);
}

test("two callers in one process share one download, and both hear its progress", async (t) => {
  const w = await hubWorld(t);
  slow(w);
  const heard: [ProvisionProgress[], ProvisionProgress[]] = [[], []];
  const [a, b] = await Promise.all([
    w.provision(REF, { onProgress: (p) => heard[0].push(p) }),
    w.provision(REF, { onProgress: (p) => heard[1].push(p) }),
  ]);
  t.is(w.fake.cdnGets().length, 1);
  t.deepEqual(a, b);
  t.deepEqual(await readFile(a.path), GGUF_BYTES);
  for (const events of heard) t.is(events.at(-1)?.phase, "done");
  t.true(heard[1].some((p) => p.phase === "downloading"));
});

test("a caller that gives up leaves the shared download running for the other", async (t) => {
  const w = await hubWorld(t);
  slow(w);
  const controller = new AbortController();
  const quitter = w.provision(REF, { signal: controller.signal });
  // Give up once the download both callers share is under way.
  const stayer = w.provision(REF, {
    signal: new AbortController().signal,
    progressIntervalMs: 0,
    onProgress: (p) => {
      if (p.phase === "downloading" && p.bytesDone > 0) controller.abort();
    },
  });
  const err = await t.throwsAsync(quitter, { instanceOf: ProvisionError });
  t.is(err.kind, "aborted");
  const got = await stayer;
  t.deepEqual(await readFile(got.path), GGUF_BYTES);
  t.is(w.fake.cdnGets().length, 1);
});

/** Starts provisionModel in another process; resolves with what it printed once it exits. */
function startChild(w: HubWorld): Promise<{ result?: { path: string; sha256: string }; error?: unknown }> {
  const options = { cacheDir: w.cacheDir, env: w.env, lockPollMs: 50 };
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, REF, JSON.stringify(options)], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => (out += chunk));
  return once(child, "exit").then(() =>
    JSON.parse(
      out
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .at(-1) ?? "{}",
    ),
  );
}

test("two processes sharing the cache download a file once: the second waits for the first's lock, then finds the blob", async (t) => {
  const w = await hubWorld(t);
  // Slow enough (about 2 s) that this process comes to the lock while the child still holds it.
  w.fake.faults.chunkBytes = 10_000;
  w.fake.faults.chunkDelayMs = 100;
  const child = startChild(w);
  // Until the child's download is under way, there is nothing to share.
  for (let i = 0; i < 1_500 && w.fake.cdnGets().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.is(w.fake.cdnGets().length, 1, "the child is downloading");
  const heard: ProvisionProgress[] = [];
  const here = await w.provision(REF, { lockPollMs: 50, progressIntervalMs: 0, onProgress: (p) => heard.push(p) });
  const there = await child;
  t.is(w.fake.cdnGets().length, 1);
  t.like(there.result, { path: here.path, sha256: here.sha256 });
  t.is(here.source, "cache", "found the other process's blob");
  t.true(
    heard.some((p) => p.phase === "downloading" && p.bytesDone > 0),
    "the waiter showed the other process's progress",
  );
});

test("a lock left by a dead process is taken over", async (t) => {
  const w = await hubWorld(t);
  const dead = spawn(process.execPath, ["-e", ""]);
  await once(dead, "exit");
  await mkdir(path.dirname(lockOf(w)), { recursive: true });
  await writeFile(lockOf(w), `${dead.pid}\n`);
  const got = await w.provision(REF, { lockPollMs: 20 });
  t.deepEqual(await readFile(got.path), GGUF_BYTES);
});
