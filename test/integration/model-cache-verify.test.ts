import test, { type ExecutionContext } from "ava";
import { GGUF_BYTES, GGUF_FILE, GGUF_REPO, hubWorld, sha256Hex } from "../unit/workers/provision/provision-harness.js";
import { api, taskBody } from "../support/http.js";
import type { Json } from "../support/json.js";
import { TestSystem } from "../support/system.js";

// POST /v1/catalog/models/{id}/verify through edge and core, for hf: models
// in a model cache laid out by the sidecars' provisioner (fetched from the
// fake hub), which core reads through --model-cache.

async function verified(t: ExecutionContext, sys: TestSystem, id: string): Promise<Json> {
  t.is((await api(t, sys.edgeUrl, "POST", `/v1/catalog/models/${id}/verify`)).status, 202);
  for (let i = 0; i < 200; i++) {
    const v = (await api(t, sys.edgeUrl, "GET", `/v1/catalog/models/${id}`)).json.verification;
    if (v?.reason !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`verification of ${id} never finished`);
}

test("verify hashes an hf: model the sidecars fetched into the model cache; one not in the cache stays pending as not local", async (t) => {
  const w = await hubWorld(t);
  const ref = `hf:${GGUF_REPO}/${GGUF_FILE}`;
  await w.provision(ref);
  const hubRequests = w.fake.requests.length;
  const sys = await TestSystem.start({ workers: [], coreFlags: { "model-cache": w.cacheDir }, coreEnv: { HF_ENDPOINT: w.fake.url } });
  t.teardown(() => sys.stop());
  const good = `sha256:${sha256Hex(GGUF_BYTES)}`;
  const register = (id: string, digest: string, source_url: string) =>
    api(t, sys.edgeUrl, "POST", "/v1/catalog/models", { body: { id, digest, source_url } });
  t.is((await register("cached", good, ref)).status, 201);
  t.is((await register("tampered", `sha256:${sha256Hex("not these bytes")}`, ref)).status, 201);
  t.is((await register("remote", good, `hf:${GGUF_REPO}@v1/${GGUF_FILE}`)).status, 201);

  t.like(await verified(t, sys, "cached"), { status: "passed", reason: "ok", computed_digest: good });
  const failed = await verified(t, sys, "tampered");
  t.like(failed, { status: "failed", reason: "digest_mismatch", computed_digest: good });
  const refused = await api(t, sys.edgeUrl, "POST", "/v1/tasks", { body: taskBody({ model_ref: "tampered" }) });
  t.is(refused.json.code, "UNTRUSTED_ARTIFACT");
  const pending = await verified(t, sys, "remote");
  t.like(pending, { status: "pending", reason: "not_local" });
  t.true((pending.warnings as string[]).includes("artifact is not local; digest not checked"));
  t.is(w.fake.requests.length, hubRequests, "verify reads the cache and never asks the hub");
});
