import test from "ava";
import { spawn } from "node:child_process";
import { launchLlorch, stopProcess } from "../../cli/process-launcher.js";
import { api, assertStreamConforms, stream, taskBody } from "../support/http.js";
import { LLORCH } from "../support/system.js";
import { upBanner } from "../support/up-banner.js";

test("llorch up comes up at LLORCH_LOG_LEVEL=warn, which hides every info line, and streams through the printed edge", async (t) => {
  const child = spawn(
    process.execPath,
    [LLORCH, "up", "--core-port", "0", "--edge-port", "0", "--workers", "1", "--tokens-per-second", "0"],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LLORCH_LOG_LEVEL: "warn" } },
  );
  t.teardown(() => child.kill("SIGKILL"));
  const out = await upBanner(child);
  t.false(/"level":30/.test(out), "no info line was echoed: readiness came some other way");
  const edgeUrl = /edge \(HTTP API\)\s+(http:\/\/\S+)/.exec(out)![1]!;

  const body = taskBody({ max_tokens: 5 });
  const admitted = await api(t, edgeUrl, "POST", "/v1/tasks", { body });
  t.is(admitted.status, 202, JSON.stringify(admitted.json));
  const path = `/v1/tasks/${String(body["task_id"])}/stream`;
  const s = await stream(edgeUrl, path);
  await s.done;
  t.is(s.events.filter((e) => e.event === "token").length, 5);
  t.is(s.events.at(-1)?.event, "end");
  assertStreamConforms(t, path, s);

  child.kill("SIGTERM");
  t.is(await new Promise<number | null>((resolve) => child.once("exit", resolve)), 0);
});

test("--log-format pretty writes readable lines, and the launcher still learns the address", async (t) => {
  const core = launchLlorch("core", ["core", "--port", "0", "--log-format", "pretty"], { script: LLORCH, nodeArgs: [] });
  t.teardown(() => stopProcess(core));
  const ready = await core.ready;
  t.regex(ready.address ?? "", /^127\.0\.0\.1:\d+$/);
  await new Promise((r) => setTimeout(r, 100)); // the log line may trail the ready pipe
  const line = core.lines.find((l) => l.includes("core listening on"));
  t.regex(line ?? "", /^\d\d:\d\d:\d\d\.\d{3} INFO {2}core {2}core listening on 127\.0\.0\.1:\d+/);
  t.false(
    core.lines.some((l) => l.startsWith("{")),
    "no JSON line",
  );
});
