import test from "ava";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { launchLlorch, stopProcess } from "../../cli/process-launcher.js";
import { api } from "../support/http.js";
import { LLORCH } from "../support/system.js";
import { upBanner } from "../support/up-banner.js";

const run = promisify(execFile);

async function llorch(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [LLORCH, ...args], { timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test("llorch --help lists the commands; no command or an unknown one is a usage error", async (t) => {
  const help = await llorch("--help");
  t.is(help.code, 0);
  for (const c of ["up", "core", "edge", "worker"]) t.regex(help.stdout, new RegExp(`^  ${c} `, "m"));
  t.is((await llorch()).code, 2);
  const unknown = await llorch("frobnicate");
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown command "frobnicate"/);
});

test("every command has --help describing its flags", async (t) => {
  const expectations: Record<string, string[]> = {
    up: ["--edge-port", "--core-port", "--workers", "--config"],
    core: ["--port", "--queue-capacity", "--metrics-port", "--config"],
    edge: ["--port", "--core", "--body-limit-bytes", "--config"],
    worker: ["--core", "--pool", "--replica", "--slots", "--fail-after", "--hang-after", "--config"],
  };
  for (const [cmd, flags] of Object.entries(expectations)) {
    const r = await llorch(cmd, "--help");
    t.is(r.code, 0, cmd);
    for (const f of flags) t.true(r.stdout.includes(f), `${cmd} --help mentions ${f}`);
  }
});

test("bad flags are refused with a message naming them", async (t) => {
  const unknown = await llorch("edge", "--bogus", "1");
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /bogus/);
  const badNumber = await llorch("worker", "--port", "abc");
  t.is(badNumber.code, 1);
  t.regex(badNumber.stderr, /--port/);
  const badCore = await llorch("core", "--queue-capacity", "0");
  t.is(badCore.code, 1);
  t.regex(badCore.stderr, /--queue-capacity/);
  const missingFile = await llorch("core", "--config", "/nonexistent/llorch.yaml");
  t.is(missingFile.code, 1);
  t.regex(missingFile.stderr, /cannot read config file/);
});

test("a config file sets flags, and flags on the command line win", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "llorch-cli-"));
  const file = join(dir, "llorch.yaml");
  writeFileSync(file, `core:\n  port: 1\n  metrics-port: 0\n  queue-capacity: 3\n  journal-root: ${join(dir, "journal")}\n`);
  const core = launchLlorch("core", ["core", "--config", file, "--port", "0"], { script: LLORCH, nodeArgs: [] });
  t.teardown(() => stopProcess(core));
  const ready = await core.ready;
  t.not(ready.address, "127.0.0.1:1", "--port 0 on the command line beat port 1 from the file");
  t.truthy(ready.metrics_address, "metrics-port came from the file");
  const metrics = await fetch(`http://${ready.metrics_address}/metrics`);
  t.is(metrics.status, 200);
});

test("llorch up brings the whole system up, prints a working curl, and stops everything on SIGTERM", async (t) => {
  const child = spawn(
    process.execPath,
    [LLORCH, "up", "--quiet", "--core-port", "0", "--edge-port", "0", "--metrics-port", "0", "--workers", "1", "--tokens-per-second", "0"],
    {
      stdio: ["ignore", "pipe", "pipe"],
      // Its own working directory, so its stores (.llorch/: the task journal is one core's) are its own too.
      cwd: mkdtempSync(join(tmpdir(), "llorch-up-")),
    },
  );
  t.teardown(() => child.kill("SIGKILL"));
  const out = await upBanner(child);
  const edgeUrl = /edge \(HTTP API\)\s+(http:\/\/\S+)/.exec(out)![1]!;
  t.regex(out, /curl -s -X POST .*\/v1\/tasks/);
  t.regex(out, /curl -sN .*\/stream/);

  // Run the printed command line as a user would paste it.
  const commandLine = /^ {2}(ID=.*)$/m.exec(out)![1]!;
  const { stdout } = await run("bash", ["-c", commandLine], { timeout: 20_000 });
  t.regex(stdout, /"task_id"/);
  t.regex(stdout, /event: started/);
  t.regex(stdout, /event: token/);
  t.regex(stdout, /event: end/);

  // The edge answers like any other: a task through fetch and an SSE client.
  const health = await api(t, edgeUrl, "GET", "/openapi.json");
  t.is(health.status, 200);

  // Every process's metrics are on, and the banner says where; the edge's address shows core's contract series.
  const metricsUrls = [...out.matchAll(/metrics: (http:\/\/\S+\/metrics)/g)].map((m) => m[1]!);
  t.is(metricsUrls.length, 3, "edge, core and the sidecar");
  t.is(metricsUrls[0], `${edgeUrl}/metrics`);
  await new Promise((r) => setTimeout(r, 1_100)); // past the edge's one-second cache of core's answer
  t.regex((await api(t, edgeUrl, "GET", "/metrics")).text, /^tokens_out_total\{[^}]*\} 32$/m);
  for (const url of metricsUrls.slice(1)) t.regex(await (await fetch(url)).text(), /^process_resident_memory_bytes \d/m, url);

  child.kill("SIGTERM");
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  t.is(code, 0);
  await t.throwsAsync(() => fetch(edgeUrl + "/openapi.json"), undefined, "the edge is gone with it");
});
