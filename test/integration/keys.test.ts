import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, status } from "@grpc/grpc-js";
import { ErrorCode, Engine } from "../../contracts/gen/llama_orch/v1/common.js";
import { PoolServiceClient } from "../../contracts/gen/llama_orch/v1/pool.js";
import { RegistryServiceClient } from "../../contracts/gen/llama_orch/v1/registry.js";
import { errorDetailOf } from "../../contracts/runtime/error-status.js";
import { api, assertStreamConforms, stream, taskBody } from "../support/http.js";
import { keyMetadata, unaryError } from "../support/grpc.js";
import { TestSystem } from "../support/system.js";
import { bearer, testKeys, writeKeysFile } from "../support/test-keys.js";

// Every process of the system reads the same keys file: clients and an admin at the edge,
// the edge's own key, and one worker key that core presents to the sidecars and the sidecars to core.
const { keys, yaml } = testKeys({
  alice: { role: "client" },
  limited: { role: "client", extra: "rate-limit: { per-second: 0.02, burst: 2 }" },
  bob: { role: "client", extra: "session-budgets: { tokens: 5 }" },
  ops: { role: "admin" },
  edge: { role: "client" },
  fleet: { role: "worker" },
});
const dir = mkdtempSync(join(tmpdir(), "llorch-keys-it-"));
const keysFile = writeKeysFile(dir, yaml);
const worker = { env: { LLORCH_KEY: keys.fleet }, flags: { "keys-file": keysFile } };

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({
    coreFlags: { "keys-file": keysFile },
    coreEnv: { LLORCH_KEY: keys.fleet },
    edgeFlags: { "keys-file": keysFile },
    edgeEnv: { LLORCH_KEY: keys.edge },
    ops: { key: keys.ops },
    workers: [
      { replica: "w1", slots: 2, ...worker },
      { pool: "spare", replica: "s1", slots: 1, ...worker },
    ],
  });
});
test.after.always(async () => {
  await sys?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("a client key streams a task to its end through edge, core and a sidecar that all check keys", async (t) => {
  const body = taskBody({ max_tokens: 4 });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body, headers: bearer(keys.alice) })).status, 202);
  const path = `/v1/tasks/${body.task_id as string}/stream`;
  const s = await stream(sys.edgeUrl, path, bearer(keys.alice));
  await s.done;
  assertStreamConforms(t, path, s);
  t.is(s.events.at(-1)!.event, "end");
  t.is((await api(t, sys.edgeUrl, "GET", "/readyz")).status, 200, "the edge asks core with its own key");
});

test("control-plane writes need an admin key: a client key gets 403 INSUFFICIENT_ROLE, the admin key gets through", async (t) => {
  const writes: [string, string, unknown][] = [
    ["POST", "/v1/pools/spare/drain", { deadline_ms: 1000 }],
    ["POST", "/v1/pools/spare/reload", { new_model_ref: "mock:other" }],
    ["POST", "/v1/catalog/models", { id: "m1", digest: "sha256:00", source_url: "hf:org/m1/m.gguf" }],
    ["POST", "/v1/artifacts", { kind: "other", content: { a: 1 } }],
  ];
  for (const [method, path, body] of writes) {
    const refused = await api(t, sys.edgeUrl, method, path, { body, headers: bearer(keys.bob) });
    t.is(refused.status, 403, path);
    t.is(refused.json.code, "INSUFFICIENT_ROLE");
    t.regex(refused.json.message, /key:bob \(role client\) may not .*: that needs an admin key/);
  }
  const reads = await api(t, sys.edgeUrl, "GET", "/v1/pools", { headers: bearer(keys.bob) });
  t.is(reads.status, 200, "a client key reads the control plane");
  const drained = await api(t, sys.edgeUrl, "POST", "/v1/pools/spare/drain", { body: { deadline_ms: 1000 }, headers: bearer(keys.ops) });
  t.is(drained.status, 202);
  const stored = await api(t, sys.edgeUrl, "POST", "/v1/artifacts", {
    body: { kind: "other", content: { a: 1 } },
    headers: bearer(keys.ops),
  });
  t.is(stored.status, 201);
});

test("a worker key is refused by the public API and by core's control plane; a client key cannot register a worker", async (t) => {
  const onEdge = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody(), headers: bearer(keys.fleet) });
  t.is(onEdge.status, 403);
  t.is(onEdge.json.code, "INSUFFICIENT_ROLE");

  const pools = new PoolServiceClient(sys.coreAddress, credentials.createInsecure());
  t.teardown(() => pools.close());
  for (const key of [keys.fleet, keys.alice]) {
    const err = await unaryError((md, cb) => pools.drainPool({ poolId: "spare", deadlineMs: 1 }, md, cb), key);
    t.is(err?.code, status.PERMISSION_DENIED);
    t.is(errorDetailOf(err!)?.code, ErrorCode.ERROR_CODE_INSUFFICIENT_ROLE);
  }

  const registry = new RegistryServiceClient(sys.coreAddress, credentials.createInsecure());
  t.teardown(() => registry.close());
  const request = {
    address: "127.0.0.1:9",
    poolId: "default",
    replicaId: "w1",
    engine: Engine.ENGINE_LLAMACPP,
    modelRef: "x",
    slotsTotal: 1,
    servesAnyModel: true,
    instanceId: "i",
    heldTaskIds: [],
  };
  const err = await new Promise<{ code?: number; details?: string }>((resolve) => {
    const call = registry.register(request, keyMetadata(keys.alice));
    call.on("error", resolve);
    call.on("data", () => resolve({}));
  });
  t.is(err.code, status.PERMISSION_DENIED);
  t.regex(err.details ?? "", /key:alice \(role client\) may not call \/llama_orch.v1.RegistryService\/Register: that needs a worker key/);
  t.deepEqual((await sys.replicas()).map((r) => r.replicaId).sort(), ["s1", "w1"]);
});

test("a key's own rate limit applies to that key only", async (t) => {
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) {
    statuses.push(
      (await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1 }), headers: bearer(keys.limited) })).status,
    );
  }
  t.deepEqual(statuses, [202, 202, 429, 429, 429], "a burst of 2 at 0.02/s");
  const other = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1 }), headers: bearer(keys.ops) });
  t.is(other.status, 202, "another key has a bucket of its own, and the edge sets no limit of its own");
});

test("a key's session budgets apply to the sessions it starts", async (t) => {
  const session = crypto.randomUUID();
  const first = taskBody({ session_id: session, max_tokens: 4, prompt: "x" });
  const admitted = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: first, headers: bearer(keys.bob) });
  t.is(admitted.headers.get("x-budget-tokens-remaining"), "5");
  await (
    await stream(sys.edgeUrl, `/v1/tasks/${first.task_id as string}/stream`, bearer(keys.bob))
  ).done;
  const refused = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ session_id: session }), headers: bearer(keys.bob) });
  t.is(refused.status, 429);
  t.is(refused.json.policy_label, "session-budget");
  const unlimited = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1 }), headers: bearer(keys.ops) });
  t.is(unlimited.headers.get("x-budget-tokens-remaining"), null, "a key without budgets starts unlimited sessions");
});

test.serial("SIGHUP reloads the keys file in edge and core; a broken file keeps the keys they had", async (t) => {
  const { keys: more, yaml: moreYaml } = testKeys({ carol: { role: "client" } });
  writeFileSync(keysFile, yaml + moreYaml.replace("keys:\n", ""));
  for (const p of [sys.edge, sys.core]) p.child.kill("SIGHUP");
  await until(() => sys.logsOf(sys.core, '"keys_reloaded"').length > 0 && sys.logsOf(sys.edge, '"keys_reloaded"').length > 0);
  const body = taskBody({ max_tokens: 1 });
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body, headers: bearer(more.carol) })).status, 202, "a new key works at once");

  writeFileSync(keysFile, "keys:\n  mallory: { role: admin, hash: not-a-hash }\n");
  for (const p of [sys.edge, sys.core]) p.child.kill("SIGHUP");
  await until(() => sys.logsOf(sys.core, '"keys_reload_failed"').length > 0 && sys.logsOf(sys.edge, '"keys_reload_failed"').length > 0);
  t.regex(String(sys.logsOf(sys.edge, '"keys_reload_failed"')[0]!.msg), /keys\.mallory\.hash must be .*; keeping the 7 keys loaded before/);
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1 }), headers: bearer(more.carol) })).status, 202);
  t.is(sys.core.child.exitCode, null, "SIGHUP does not stop a process with a keys file");
});

test("a task belongs to the key that submitted it: another client key can neither stream, cancel nor list it; an admin key can", async (t) => {
  const body = taskBody({ max_tokens: 40 });
  const id = body.task_id as string;
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body, headers: bearer(keys.alice) })).status, 202);
  // The mock here runs at full speed: the task may be running or already finished, so both listings count.
  const listedFor = async (key: string) => {
    const ids: string[] = [];
    for (const path of ["/v1/tasks", "/v1/tasks?state=finished"]) {
      const res = await api<{ tasks: { task_id: string }[] }>(t, sys.edgeUrl, "GET", path, { headers: bearer(key) });
      ids.push(...res.json.tasks.map((x) => x.task_id));
    }
    return ids;
  };

  const unknown = await api<{ code: string; message: string }>(t, sys.edgeUrl, "GET", `/v1/tasks/${crypto.randomUUID()}/stream`, {
    headers: bearer(keys.edge),
  });
  const foreignStream = await api<{ code: string; message: string }>(t, sys.edgeUrl, "GET", `/v1/tasks/${id}/stream`, {
    headers: bearer(keys.edge),
  });
  t.is(foreignStream.status, 404);
  t.is(foreignStream.json.code, "NOT_FOUND");
  t.is(
    foreignStream.json.message.replace(id, "ID"),
    unknown.json.message.replace(/[0-9a-f-]{36}/, "ID"),
    "the same words as an unknown id",
  );
  const foreignCancel = await api(t, sys.edgeUrl, "POST", `/v1/tasks/${id}/cancel`, { headers: bearer(keys.edge) });
  t.is(foreignCancel.status, 404);
  t.false((await listedFor(keys.edge)).includes(id), "another client does not see it listed");
  t.true((await listedFor(keys.alice)).includes(id), "its owner does");
  t.true((await listedFor(keys.ops)).includes(id), "an admin does");

  // The other key's cancel did nothing: its owner reads it to its natural end. An admin may cancel any task.
  const s = await stream(sys.edgeUrl, `/v1/tasks/${id}/stream`, bearer(keys.alice));
  await s.done;
  t.is(s.events.at(-1)!.event, "end");
  t.is(s.events.at(-1)!.data.stop_reason, "max_tokens");
  t.is((await api(t, sys.edgeUrl, "POST", `/v1/tasks/${id}/cancel`, { headers: bearer(keys.ops) })).status, 204);
});

test("logs name callers by their key's name, and no process logs a key", async (t) => {
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ max_tokens: 1 }), headers: bearer(keys.ops) });
  await new Promise((r) => setTimeout(r, 200));
  const lines = sys.allLogLines();
  t.true(lines.some((l) => l.includes('"identity":"key:ops"')));
  t.deepEqual(
    lines.filter((l) => Object.values(keys).some((k) => l.includes(k))),
    [],
  );
});

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 25));
  }
}
