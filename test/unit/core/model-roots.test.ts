import test from "ava";
import { mkdir, realpath, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { CatalogModel } from "../../../contracts/gen/llama_orch/v1/catalog.js";
import { OrchError } from "../../../contracts/runtime/metadata.js";
import { ModelRoots, OUTSIDE_ROOTS_MESSAGE } from "../../../core/catalog/model-roots.js";
import { assertReadableSource } from "../../../core/catalog/verify.js";
import { verifyEntry } from "../../support/catalog-json.js";
import { DIGEST, sha, tempDir } from "./catalog-harness.js";

// Catalog verify reads only under --model-roots and the model cache, and what
// it says about a file elsewhere is the same whether that file exists or not.

async function world(t: Parameters<typeof tempDir>[0]) {
  const base = await tempDir(t);
  const root = path.join(base, "models");
  const outside = path.join(base, "elsewhere");
  await mkdir(root);
  await mkdir(outside);
  await writeFile(path.join(root, "m.gguf"), "weights");
  await writeFile(path.join(outside, "secret"), "not yours");
  return { base, root, outside, roots: await ModelRoots.of([root]) };
}

test("a file under a root is admitted; one outside, or reached with .., is not", async (t) => {
  const { root, outside, roots } = await world(t);
  t.truthy(await roots.admit(path.join(root, "m.gguf")));
  t.is(await roots.admit(path.join(outside, "secret")), undefined);
  t.is(await roots.admit(path.join(root, "..", "elsewhere", "secret")), undefined);
  t.is(await roots.admit("/etc/hostname"), undefined);
  t.is(
    await roots.admit(path.join(root, "missing.gguf")),
    path.resolve(root, "missing.gguf"),
    "a missing file in a root is the root's business",
  );
});

test("a symlink inside a root that leads out is refused, whether its target exists or not", async (t) => {
  const { root, outside, roots } = await world(t);
  await symlink(path.join(outside, "secret"), path.join(root, "to-secret"));
  await symlink(path.join(outside, "nope"), path.join(root, "to-nothing"));
  await symlink(outside, path.join(root, "dir-out"));
  for (const name of ["to-secret", "to-nothing", "dir-out/secret", "dir-out/nope"]) {
    t.is(await roots.admit(path.join(root, name)), undefined, name);
  }
});

test("a root that is itself a symlink admits what lies under its target", async (t) => {
  const { base, root } = await world(t);
  await symlink(root, path.join(base, "link"));
  const roots = await ModelRoots.of([path.join(base, "link")]);
  t.is(await roots.admit(path.join(base, "link", "m.gguf")), path.join(await realpath(root), "m.gguf"));
});

test("verify refuses a source outside the roots with one message for /etc/hostname and /nope alike, before reading", async (t) => {
  const { base, root, roots } = await world(t);
  const refusals = [];
  for (const source of ["file:/etc/hostname", "file:/nope", "file:../elsewhere/secret", "file:/etc"]) {
    const entry = CatalogModel.fromPartial({ id: "m", digest: DIGEST, sourceUrl: source });
    const err = await t.throwsAsync(assertReadableSource(entry, { baseDir: root, roots }), { instanceOf: OrchError });
    refusals.push([err.message, err.detail.field]);
  }
  t.deepEqual(new Set(refusals.map((r) => JSON.stringify(r))).size, 1);
  t.deepEqual(refusals[0], [OUTSIDE_ROOTS_MESSAGE, "/source_url"]);
  await t.notThrowsAsync(
    assertReadableSource(CatalogModel.fromPartial({ id: "m", digest: DIGEST, sourceUrl: "file:m.gguf" }), { baseDir: root, roots }),
  );
  // Not a file ref: nothing of the client's naming is read (the cache and the entry's own directory are core's).
  await t.notThrowsAsync(
    assertReadableSource(CatalogModel.fromPartial({ id: "m", digest: DIGEST, sourceUrl: "hf:a/b" }), { baseDir: base, roots }),
  );
});

test("verify itself, should it be reached, reads nothing outside the roots", async (t) => {
  const { base, root, outside, roots } = await world(t);
  const v = await verifyEntry(
    {
      id: "m",
      digest: `sha256:${sha("not yours")}`,
      source_url: `file:${path.join(outside, "secret")}`,
      state: "Active",
      created_ms: 0,
      state_changed_ms: 0,
    },
    { baseDir: base, modelDir: path.join(base, "none"), roots },
  );
  t.like(v, { status: "pending", reason: "not_local", computed_digest: undefined });
  t.true(v.warnings.includes(OUTSIDE_ROOTS_MESSAGE));
  const inside = await verifyEntry(
    {
      id: "m",
      digest: `sha256:${sha("weights")}`,
      source_url: `file:${path.join(root, "m.gguf")}`,
      state: "Active",
      created_ms: 0,
      state_changed_ms: 0,
    },
    { baseDir: base, modelDir: path.join(base, "none"), roots },
  );
  t.is(inside.status, "passed");
});
