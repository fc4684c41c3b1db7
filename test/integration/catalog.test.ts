import test from "ava";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api, stream, taskBody } from "../support/http.js";
import { parseSse } from "../support/sse-parse.js";
import { TestSystem } from "../support/system.js";
import type { Json } from "../support/json.js";

type T = Parameters<typeof api>[0];

async function waitVerified(t: T, sys: TestSystem, id: string): Promise<Json> {
  for (let i = 0; i < 100; i++) {
    const m = (await api(t, sys.edgeUrl, "GET", `/v1/catalog/models/${id}`)).json;
    if (m.verification && m.verification.status !== "pending") return m;
    if (m.verification?.status === "pending" && m.verification.warnings?.length && i > 5) return m;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("verification never finished");
}

test("catalog CRUD, verification with a streamed sha256, retire with MODEL_DEPRECATED, all surviving a core restart", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "llorch-model-"));
  const sys = await TestSystem.start({ coreFlags: { "metrics-port": "0", "model-roots": dir }, workers: [{ replica: "w" }] });
  t.teardown(() => sys.stop());
  const file = join(dir, "tiny.gguf");
  writeFileSync(file, "not really a model, but bytes to hash\n".repeat(1000));
  const digest = "sha256:" + createHash("sha256").update("not really a model, but bytes to hash\n".repeat(1000)).digest("hex");

  const created = await api(t, sys.edgeUrl, "POST", "/v1/catalog/models", {
    body: { id: "tiny", digest, source_url: `file:${file}`, tags: ["test"] },
  });
  t.is(created.status, 201);
  t.like(created.json, { id: "tiny", digest, state: "Active" });
  const duplicate = await api(t, sys.edgeUrl, "POST", "/v1/catalog/models", { body: { id: "tiny", digest } });
  t.is(duplicate.status, 400);
  const badRef = await api(t, sys.edgeUrl, "POST", "/v1/catalog/models", { body: { id: "bad", digest, source_url: "ftp://x/y" } });
  t.is(badRef.status, 400);
  t.is(badRef.json.field, "/source_url");
  const escape = await api(t, sys.edgeUrl, "POST", "/v1/catalog/models", { body: { id: "../../etc", digest } });
  t.is(escape.status, 400);
  t.is(escape.json.field, "/id");

  t.is((await api(t, sys.edgeUrl, "POST", "/v1/catalog/models/tiny/verify")).status, 202);
  const verified = await waitVerified(t, sys, "tiny");
  t.is(verified.verification.status, "passed");
  t.true(
    verified.verification.warnings.some((w: string) => /signature/i.test(w)),
    "missing signatures only warn",
  );

  // Files outside --model-roots are never read, and the answer does not say whether they exist.
  const refusals = [];
  for (const [id, source] of [
    ["host", "file:/etc/hostname"],
    ["nope", "file:/nope"],
    ["up", `file:${dir}/../${dir.split("/").at(-1)}-other/x.gguf`],
  ]) {
    t.is((await api(t, sys.edgeUrl, "POST", "/v1/catalog/models", { body: { id, digest, source_url: source } })).status, 201);
    const refused = await api(t, sys.edgeUrl, "POST", `/v1/catalog/models/${id}/verify`);
    t.is(refused.status, 400, source);
    t.like(refused.json, { code: "INVALID_PARAMS", field: "/source_url" });
    refusals.push(refused.text);
    t.is((await api(t, sys.edgeUrl, "GET", `/v1/catalog/models/${id}`)).json.verification, undefined, "nothing was verified");
  }
  t.is(new Set(refusals).size, 1, "the same answer for an existing file and a missing one");

  const wrong = await api(t, sys.edgeUrl, "POST", "/v1/catalog/models", {
    body: { id: "tampered", digest: "sha256:" + "0".repeat(64), source_url: `file:${file}` },
  });
  t.is(wrong.status, 201);
  await api(t, sys.edgeUrl, "POST", "/v1/catalog/models/tampered/verify");
  const failed = await waitVerified(t, sys, "tampered");
  t.is(failed.verification.status, "failed");
  const untrusted = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "tampered" }) });
  t.is(untrusted.status, 400);
  t.is(untrusted.json.code, "UNTRUSTED_ARTIFACT");

  const metrics = await (await fetch(`http://${sys.coreMetricsAddress}/metrics`)).text();
  t.regex(metrics, /catalog_verifications_total\{[^}]*result="pass"/);
  t.regex(metrics, /catalog_verifications_total\{[^}]*result="fail"[^}]*reason="digest_mismatch"/);
  // VerifyModel hashes the bytes itself, so no engine took part: the label says so instead of being empty.
  t.regex(metrics, /catalog_verifications_total\{[^}]*result="pass"[^}]*engine="none"/);
  t.notRegex(metrics, /^catalog_verifications_total\{[^}]*=""/m, "no empty label value");

  t.is(
    (await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "tiny", max_tokens: 1 }) })).status,
    202,
    "an Active model is served",
  );
  const retire = await api(t, sys.edgeUrl, "POST", "/v1/catalog/models/tiny/state", { body: { state: "Retired", deadline_ms: 60_000 } });
  t.is(retire.status, 202);
  const deprecated = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "tiny" }) });
  t.is(deprecated.status, 400);
  t.is(deprecated.json.code, "MODEL_DEPRECATED");
  t.regex(await (await fetch(`http://${sys.coreMetricsAddress}/metrics`)).text(), /model_state\{model_id="tiny",state="Retired"\} 1/);

  // Restart core: the catalog is on disk.
  await sys.killCore();
  await sys.restartCore();
  await sys.waitForReadyReplicas(1);
  let after = await api(t, sys.edgeUrl, "GET", "/v1/catalog/models/tiny");
  for (let i = 0; i < 30 && after.status === 503; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await api(t, sys.edgeUrl, "GET", "/v1/catalog/models/tiny");
  }
  t.is(after.status, 200);
  t.is(after.json.state, "Retired");
  t.is(after.json.verification.status, "passed");

  t.is((await api(t, sys.edgeUrl, "DELETE", "/v1/catalog/models/tiny")).status, 204);
  t.is((await api(t, sys.edgeUrl, "GET", "/v1/catalog/models/tiny")).status, 404);
  t.is((await api(t, sys.edgeUrl, "DELETE", "/v1/catalog/models/tiny")).status, 404);
  const badState = await api(t, sys.edgeUrl, "POST", "/v1/catalog/models/tampered/state", { body: { state: "Sleeping" } });
  t.is(badState.status, 400);
});

test("artifacts are content-addressed, keep lineage, hold every finished stream's transcript, and survive a restart", async (t) => {
  const sys = await TestSystem.start({ edgeFlags: { "body-limit-bytes": "4000000" }, workers: [{ replica: "w" }] });
  t.teardown(() => sys.stop());
  const plan = { kind: "plan", content: { steps: ["a", "b"], note: "héllo 🦙" }, tags: ["p"] };
  const first = await api(t, sys.edgeUrl, "POST", "/v1/artifacts", { body: plan });
  t.is(first.status, 201);
  t.regex(first.json.id, /^[0-9a-f]{64}$/);
  const reordered = await api(t, sys.edgeUrl, "POST", "/v1/artifacts", {
    body: { tags: ["p"], content: { note: "héllo 🦙", steps: ["a", "b"] }, kind: "plan" },
  });
  t.is(reordered.json.id, first.json.id, "the same content gives the same id");
  const child = await api(t, sys.edgeUrl, "POST", "/v1/artifacts", { body: { kind: "diff", content: { d: 1 }, parent: first.json.id } });
  const got = await api(t, sys.edgeUrl, "GET", `/v1/artifacts/${child.json.id}`);
  t.is(got.status, 200);
  t.deepEqual(got.json.lineage, [first.json.id]);
  t.is(typeof got.json.created_ms, "number");

  t.is((await api(t, sys.edgeUrl, "POST", "/v1/artifacts", { body: { kind: "poem", content: {} } })).status, 400);
  t.is((await api(t, sys.edgeUrl, "POST", "/v1/artifacts", { body: { kind: "other", content: {}, parent: "f".repeat(64) } })).status, 400);
  const huge = await api(t, sys.edgeUrl, "POST", "/v1/artifacts", { body: { kind: "other", content: { x: "y".repeat(2_000_000) } } });
  t.is(huge.status, 413);
  t.is((await api(t, sys.edgeUrl, "GET", `/v1/artifacts/${"a".repeat(64)}`)).status, 404);

  const task = taskBody({ max_tokens: 5 });
  await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: task });
  const s = await stream(sys.edgeUrl, `/v1/tasks/${task.task_id}/stream`);
  await s.done;
  const traceId = s.events.at(-1)!.data.trace_artifact_id as string;
  t.regex(traceId, /^[0-9a-f]{64}$/);
  let trace = await api(t, sys.edgeUrl, "GET", `/v1/artifacts/${traceId}`);
  for (let i = 0; i < 20 && trace.status === 404; i++) {
    await new Promise((r) => setTimeout(r, 50));
    trace = await api(t, sys.edgeUrl, "GET", `/v1/artifacts/${traceId}`);
  }
  t.is(trace.json.kind, "trace");
  t.is(trace.json.content.format, "text/event-stream");
  const transcript = parseSse(trace.json.content.sse as string).map((f) => ({
    id: f.id,
    event: f.event,
    data: JSON.parse(f.data.join("\n")),
  }));
  const received = s.events.map((e) => ({ ...e, data: { ...e.data } }));
  // The transcript's last frame is the terminal event before it was stamped with its own id.
  delete received.at(-1)!.data.trace_artifact_id;
  t.deepEqual(transcript, received, "the transcript is what the client received");

  await sys.killCore();
  await sys.restartCore();
  let again = await api(t, sys.edgeUrl, "GET", `/v1/artifacts/${child.json.id}`);
  for (let i = 0; i < 30 && again.status === 503; i++) {
    await new Promise((r) => setTimeout(r, 100));
    again = await api(t, sys.edgeUrl, "GET", `/v1/artifacts/${child.json.id}`);
  }
  t.is(again.status, 200);
  t.deepEqual(again.json.lineage, [first.json.id]);
});

test("with auto-fetch off, a model no pool has loaded gets an advisory error; with it on, an idle pool loads it", async (t) => {
  const off = await TestSystem.start({
    workers: [{ pool: "only", replica: "o1", model: "hf:org/a", flags: { "serves-any-model": "false" } }],
  });
  t.teardown(() => off.stop());
  const advisory = await api(t, off.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "hf:org/b" }) });
  t.is(advisory.status, 503);
  t.is(advisory.json.code, "POOL_UNAVAILABLE");
  t.regex(advisory.json.message, /auto-fetch is off/);

  const on = await TestSystem.start({
    coreFlags: { "auto-fetch": "" },
    workers: [{ pool: "only", replica: "o1", model: "hf:org/a", flags: { "serves-any-model": "false", "reload-ms": "300" } }],
  });
  t.teardown(() => on.stop());
  const fetching = await api(t, on.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "hf:org/b" }) });
  t.is(fetching.status, 503);
  t.is(fetching.json.code, "POOL_UNREADY");
  t.true(fetching.json.retriable);
  let admitted = await api(t, on.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "hf:org/b", max_tokens: 1 }) });
  for (let i = 0; i < 60 && admitted.status !== 202; i++) {
    await new Promise((r) => setTimeout(r, 100));
    admitted = await api(t, on.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "hf:org/b", max_tokens: 1 }) });
  }
  t.is(admitted.status, 202, "served once the pool has loaded it");
});

test("retiring a model drains the pools that serve it", async (t) => {
  const sys = await TestSystem.start({
    workers: [{ pool: "old-pool", replica: "o1", model: "hf:org/old", flags: { "serves-any-model": "false" } }],
  });
  t.teardown(() => sys.stop());
  t.is(
    (
      await api(t, sys.edgeUrl, "POST", "/v1/catalog/models", {
        body: { id: "old", digest: "sha256:" + "1".repeat(64), source_url: "hf:org/old" },
      })
    ).status,
    201,
  );
  const retire = await api(t, sys.edgeUrl, "POST", "/v1/catalog/models/old/state", { body: { state: "Retired", deadline_ms: 1000 } });
  t.is(retire.status, 202);
  t.is(retire.json.pools_draining, 1);
  t.true((await api(t, sys.edgeUrl, "GET", "/v1/pools/old-pool/health")).json.draining);
  const refused = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "hf:org/old" }) });
  t.is(refused.json.code, "MODEL_DEPRECATED", "matched through source_url");
});
