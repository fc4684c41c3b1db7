import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { api, stream, taskBody } from "../support/http.js";
import type { Json } from "../support/json.js";
import { LLORCH, TestSystem } from "../support/system.js";

// llorch status, tasks and cancel read and act through the public API, with
// the key from LLORCH_API_KEY, exactly as a remote operator would.

const KEY = "llorch-status-key-9e41";
const run = promisify(execFile);

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({ apiKey: KEY, workers: [{ pool: "slow", replica: "slow-1", slots: 1, tokensPerSecond: 20 }] });
});
test.after.always(async () => sys?.stop());

async function llorch(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [LLORCH, ...args, "--edge", sys.edgeUrl], {
      timeout: 20_000,
      env: { ...process.env, LLORCH_API_KEY: KEY },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test.serial("status shows the pools, replicas and running task; tasks lists them; cancel ends one", async (t) => {
  const auth = { Authorization: `Bearer ${KEY}` };
  const bodies = [taskBody({ max_tokens: 2000 }), taskBody({ max_tokens: 2000 })];
  for (const body of bodies) t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body, headers: auth })).status, 202);

  const status = await llorch("status");
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, /^POOL +ENGINE +MODEL/m);
  t.regex(status.stdout, /^slow +llamacpp +mock:tiny +yes +1\/1 +1\/0/m, "one running, one queued interactive");
  t.regex(status.stdout, /^slow-1 +slow +busy/m);
  const asJson = JSON.parse((await llorch("status", "--json")).stdout);
  t.deepEqual((asJson.tasks as Json[]).map((x) => x.task_id).sort(), bodies.map((b) => b.task_id).sort());

  const tasks = await llorch("tasks");
  t.regex(tasks.stdout, new RegExp(`^${bodies[0]!.task_id} +running +slow +slow-1`, "m"));
  t.regex(tasks.stdout, new RegExp(`^${bodies[1]!.task_id} +queued +slow +#1`, "m"));

  for (const body of bodies) {
    const cancel = await llorch("cancel", body.task_id as string);
    t.is(cancel.code, 0, cancel.stderr);
    t.is(cancel.stdout, `cancelled ${body.task_id as string}\n`);
  }
  const s = await stream(sys.edgeUrl, `/v1/tasks/${bodies[0]!.task_id as string}/stream`, auth);
  await s.done;
  t.like(s.events.at(-1), { event: "end", data: { stop_reason: "canceled" } });
  const finished = await llorch("tasks", "--state", "finished");
  t.regex(finished.stdout, new RegExp(`^${bodies[0]!.task_id} +finished +slow +\\S* *\\d+ +canceled`, "m"));
});

test.serial("without the key the commands say the edge refused them, and a missing task is a clear error", async (t) => {
  const noKey = await run(process.execPath, [LLORCH, "status", "--edge", sys.edgeUrl], {
    env: { ...process.env, LLORCH_API_KEY: "" },
  }).catch((e: { code: number; stderr: string }) => e);
  t.is((noKey as { code: number }).code, 1);
  t.regex((noKey as { stderr: string }).stderr, /UNAUTHORIZED/);
  const missing = await llorch("cancel", "6f1c2a0e-7d4b-4e58-9b0a-2f3c4d5e6a7b");
  t.is(missing.code, 1);
  t.regex(missing.stderr, /NOT_FOUND/);
});
