import test, { type ExecutionContext } from "ava";
import fc from "fast-check";
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { canonicalJson, CanonicalJsonError } from "../../../core/artifacts/canonical-json.js";
import {
  ARTIFACT_KINDS,
  ArtifactError,
  ArtifactStore,
  DEFAULT_MAX_ARTIFACT_BYTES,
  type ArtifactInput,
} from "../../support/artifact-json.js";

// ---------- helpers ----------

async function tempRoot(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "llorch-artifacts-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function fakeClock(start = 1_000) {
  const clock = { now: start };
  return { clock: () => clock.now, advance: (ms: number) => void (clock.now += ms) };
}

async function openStore(t: ExecutionContext, options: Parameters<typeof ArtifactStore.open>[1] = {}) {
  const root = await tempRoot(t);
  const time = fakeClock();
  const store = await ArtifactStore.open(root, { clock: time.clock, ...options });
  return { root, store, ...time };
}

async function refused(
  t: ExecutionContext,
  promise: Promise<unknown>,
  kind: ArtifactError["kind"],
  field?: string,
): Promise<ArtifactError> {
  const err = await t.throwsAsync(promise, { instanceOf: ArtifactError });
  t.is(err.kind, kind);
  if (field !== undefined) t.is(err.field, field);
  return err;
}

/** Same own members, inserted in the order given by `order`. */
function reorder(value: unknown, order: (keys: string[]) => string[]): unknown {
  if (Array.isArray(value)) return value.map((v) => reorder(v, order));
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const key of order(Object.keys(value))) {
    Object.defineProperty(out, key, {
      value: reorder((value as Record<string, unknown>)[key], order),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

const jsonValue = fc.jsonValue();

// ---------- canonical JSON ----------

test("canonicalJson sorts keys, drops whitespace and keeps array order", (t) => {
  t.is(canonicalJson({ b: 1, a: [3, 1, 2], c: { z: null, y: true } }), '{"a":[3,1,2],"b":1,"c":{"y":true,"z":null}}');
  t.is(canonicalJson([]), "[]");
  t.is(canonicalJson({}), "{}");
  t.is(canonicalJson("x"), '"x"');
  t.is(canonicalJson(1e21), "1e+21");
  t.is(canonicalJson(-0), "0");
});

test("canonicalJson orders keys by UTF-16 code units, not locale or code points", (t) => {
  // U+FF5E (one unit, 0xFF5E) sorts after U+1F600 (surrogates start at 0xD83D) by code units.
  const keys = ["b", "B", "a", "é", "\u{1F600}", "\uFF5E", "10", "9", ""];
  const obj = Object.fromEntries(keys.map((k, i) => [k, i]));
  const expected = ["", "10", "9", "B", "a", "b", "é", "\u{1F600}", "\uFF5E"];
  t.deepEqual([...keys].sort(), expected);
  t.is(canonicalJson(obj), `{${expected.map((k) => `${JSON.stringify(k)}:${obj[k]}`).join(",")}}`);
});

test("canonicalJson escapes strings exactly as JSON.stringify does (unicode, control chars, lone surrogates)", (t) => {
  const s = 'héllo "wörld" \\ \n\t\u0000 \u2028 😀 \uD800 日本語';
  t.is(canonicalJson({ [s]: s }), `{${JSON.stringify(s)}:${JSON.stringify(s)}}`);
  t.is(JSON.parse(canonicalJson([s]))[0], s);
});

test("canonicalJson: shuffled key insertion order gives the same string (property)", (t) => {
  fc.assert(
    fc.property(jsonValue, fc.integer(), (value, seed) => {
      let state = seed;
      const shuffle = (keys: string[]) => {
        const out = [...keys];
        for (let i = out.length - 1; i > 0; i--) {
          state = (state * 1103515245 + 12345) & 0x7fffffff;
          const j = state % (i + 1);
          [out[i], out[j]] = [out[j]!, out[i]!];
        }
        return out;
      };
      const reversed = (keys: string[]) => [...keys].reverse();
      const expected = canonicalJson(value);
      return canonicalJson(reorder(value, shuffle)) === expected && canonicalJson(reorder(value, reversed)) === expected;
    }),
  );
  t.pass();
});

test("canonicalJson parses back deep-equal to a JSON round trip (property)", (t) => {
  fc.assert(
    fc.property(jsonValue, (value) => {
      const canonical = canonicalJson(value);
      // And it is a fixed point: canonicalising the parsed form changes nothing.
      return (
        isDeepStrictEqual(JSON.parse(canonical), JSON.parse(JSON.stringify(value))) && canonicalJson(JSON.parse(canonical)) === canonical
      );
    }),
  );
  t.pass();
});

test("canonicalJson omits undefined object members, like JSON.stringify", (t) => {
  t.is(canonicalJson({ a: undefined, b: 1 }), '{"b":1}');
});

test("canonicalJson refuses what JSON cannot represent faithfully", (t) => {
  const cases: Array<[unknown, RegExp, string]> = [
    [{ a: Number.NaN }, /NaN/, "/a"],
    [{ a: [1, Number.POSITIVE_INFINITY] }, /Infinity/, "/a/1"],
    [{ n: 10n }, /bigint/, "/n"],
    [{ d: new Date(0) }, /Date/, "/d"],
    [{ m: new Map() }, /Map/, "/m"],
    [{ f: () => 1 }, /function/, "/f"],
    [{ s: Symbol("x") }, /symbol/, "/s"],
    [[1, undefined], /undefined/, "/1"],
    // eslint-disable-next-line no-sparse-arrays
    [[1, , 3], /undefined/, "/1"],
    [undefined, /undefined/, ""],
    [{ "a/b": { "~": Number.NaN } }, /NaN/, "/a~1b/~0"],
    [{ [Symbol("k")]: 1 }, /symbol-keyed/, ""],
    [
      new (class Point {
        x = 1;
      })(),
      /object/,
      "",
    ],
  ];
  for (const [value, message, pointer] of cases) {
    const err = t.throws(() => canonicalJson(value), { instanceOf: TypeError, message });
    t.true(err instanceof CanonicalJsonError);
    t.is((err as CanonicalJsonError).pointer, pointer);
  }
});

test("canonicalJson refuses cycles but accepts shared, non-cyclic references", (t) => {
  const shared = { x: 1 };
  t.is(canonicalJson({ a: shared, b: [shared] }), '{"a":{"x":1},"b":[{"x":1}]}');
  const cyclic: Record<string, unknown> = {};
  cyclic.self = { back: cyclic };
  t.throws(() => canonicalJson(cyclic), { instanceOf: TypeError, message: /circular/ });
});

test("canonicalJson accepts null-prototype objects and __proto__ as an ordinary key", (t) => {
  const bare = Object.create(null) as Record<string, unknown>;
  bare.b = 2;
  bare.a = 1;
  t.is(canonicalJson(bare), '{"a":1,"b":2}');
  t.is(canonicalJson(JSON.parse('{"__proto__":{"x":1},"a":0}')), '{"__proto__":{"x":1},"a":0}');
});

// ---------- ids ----------

test("the same content gives the same id; the id is the sha256 of the canonical document", async (t) => {
  const { store } = await openStore(t);
  const input: ArtifactInput = { kind: "summary", content: { text: "All checks passed." } };
  const { artifact } = await store.put(input);
  t.regex(artifact.id, /^[0-9a-f]{64}$/);
  t.is(artifact.digest, `sha256:${artifact.id}`);
  const { createHash } = await import("node:crypto");
  const expected = createHash("sha256")
    .update(canonicalJson({ kind: "summary", content: input.content }))
    .digest("hex");
  t.is(artifact.id, expected);
  t.is((await store.put({ kind: "summary", content: { text: "All checks passed." } })).artifact.id, artifact.id);
});

test("different key order gives the same id; any change in content, kind, tags, parent or metadata gives a new one", async (t) => {
  const { store } = await openStore(t);
  const a = await store.put({ kind: "plan", content: { steps: [1, 2], owner: { name: "x", id: 7 } }, metadata: { b: 1, a: 2 } });
  const b = await store.put({ metadata: { a: 2, b: 1 }, content: { owner: { id: 7, name: "x" }, steps: [1, 2] }, kind: "plan" });
  t.is(b.artifact.id, a.artifact.id);
  t.false(b.created);

  const variants: ArtifactInput[] = [
    { kind: "plan", content: { steps: [2, 1], owner: { name: "x", id: 7 } }, metadata: { b: 1, a: 2 } },
    { kind: "diff", content: { steps: [1, 2], owner: { name: "x", id: 7 } }, metadata: { b: 1, a: 2 } },
    { kind: "plan", content: { steps: [1, 2], owner: { name: "x", id: 7 } } },
    { kind: "plan", content: { steps: [1, 2], owner: { name: "x", id: 7 } }, metadata: { b: 1, a: 2 }, tags: [] },
    { kind: "plan", content: { steps: [1, 2], owner: { name: "x", id: 7 } }, metadata: { b: 1, a: 2 }, parent: a.artifact.id },
  ];
  const ids = new Set([a.artifact.id]);
  for (const v of variants) ids.add((await store.put(v)).artifact.id);
  t.is(ids.size, variants.length + 1);
});

test("undefined optional members are the same as absent ones", async (t) => {
  const { store } = await openStore(t);
  const a = await store.put({ kind: "other", content: { x: 1, y: undefined } });
  const b = await store.put({ kind: "other", content: { x: 1 }, tags: undefined, parent: undefined, metadata: undefined });
  t.is(b.artifact.id, a.artifact.id);
  t.false("tags" in b.artifact || "parent" in b.artifact || "metadata" in b.artifact);
});

test("put reports created, and a repeat keeps the original created_ms", async (t) => {
  const { store, advance } = await openStore(t);
  const first = await store.put({ kind: "trace", content: { spans: [] }, tags: ["t1"] });
  t.true(first.created);
  t.is(first.artifact.created_ms, 1_000);
  advance(5_000);
  const again = await store.put({ kind: "trace", content: { spans: [] }, tags: ["t1"] });
  t.false(again.created);
  t.deepEqual(again.artifact, first.artifact);
  t.is(again.artifact.created_ms, 1_000);
  t.deepEqual(await store.get(first.artifact.id), first.artifact);
});

test("stored artifacts are copies: mutating the input or a result does not change the store", async (t) => {
  const { store } = await openStore(t);
  const content = { list: [1, 2] };
  const { artifact } = await store.put({ kind: "other", content });
  content.list.push(3);
  (artifact.content.list as number[]).push(4);
  t.deepEqual((await store.get(artifact.id))!.content, { list: [1, 2] });
});

test("concurrent puts of the same content both succeed and agree", async (t) => {
  const { store, root } = await openStore(t);
  const input: ArtifactInput = { kind: "summary", content: { text: "race" } };
  const results = await Promise.all(Array.from({ length: 8 }, () => store.put(input)));
  t.is(results.filter((r) => r.created).length, 1);
  for (const r of results) t.deepEqual(r.artifact, results[0]!.artifact);

  // A second store instance on the same root (as another process would be) agrees too.
  const other = await ArtifactStore.open(root, { clock: () => 99_999 });
  const input2: ArtifactInput = { kind: "summary", content: { text: "race 2" } };
  const [x, y] = await Promise.all([store.put(input2), other.put(input2)]);
  t.deepEqual(x.artifact, y.artifact);
  t.is([x.created, y.created].filter(Boolean).length, 1);
  t.deepEqual(await store.get(x.artifact.id), x.artifact);
});

// ---------- lineage and parents ----------

test("lineage runs parent first to the root across three generations", async (t) => {
  const { store } = await openStore(t);
  const root = (await store.put({ kind: "plan", content: { v: 1 } })).artifact;
  const child = (await store.put({ kind: "diff", content: { v: 2 }, parent: root.id })).artifact;
  const grandchild = (await store.put({ kind: "summary", content: { v: 3 }, parent: child.id })).artifact;
  t.deepEqual(root.lineage, []);
  t.deepEqual(child.lineage, [root.id]);
  t.deepEqual(grandchild.lineage, [child.id, root.id]);
  t.is(grandchild.parent, child.id);
  t.deepEqual((await store.get(grandchild.id))!.lineage, [child.id, root.id]);
});

test("lineage is computed on read, not stored in the file", async (t) => {
  const { store, root } = await openStore(t);
  const parent = (await store.put({ kind: "plan", content: { v: 1 } })).artifact;
  const child = (await store.put({ kind: "diff", content: { v: 2 }, parent: parent.id })).artifact;
  const onDisk = JSON.parse(await readFile(path.join(root, child.id.slice(0, 2), `${child.id}.json`), "utf8"));
  t.false("lineage" in onDisk);
  t.is(onDisk.parent, parent.id);
});

test("an unknown or malformed parent is refused", async (t) => {
  const { store } = await openStore(t);
  const missing = "a".repeat(64);
  const err = await refused(t, store.put({ kind: "plan", content: {}, parent: missing }), "invalid", "/parent");
  t.is(err.message, `unknown parent artifact ${missing}`);
  await refused(t, store.put({ kind: "plan", content: {}, parent: "../../etc/passwd" }), "invalid", "/parent");
  await refused(t, store.put({ kind: "plan", content: {}, parent: "A".repeat(64) }), "invalid", "/parent");
});

// ---------- validation and limits ----------

test("size limit: canonical JSON above maxBytes is too_large, with both sizes in the message", async (t) => {
  t.is(DEFAULT_MAX_ARTIFACT_BYTES, 1024 * 1024);
  const { store } = await openStore(t, { maxBytes: 100 });
  t.is(store.maxBytes, 100);
  // {"content":{"t":"…"},"kind":"other"} is 35 bytes plus the text.
  const fits = await store.put({ kind: "other", content: { t: "x".repeat(65) } });
  t.true(fits.created);
  const err = await refused(t, store.put({ kind: "other", content: { t: "x".repeat(66) } }), "too_large");
  t.regex(err.message, /\b101\b/);
  t.regex(err.message, /\b100\b/);
  // Multi-byte characters count in UTF-8 bytes.
  await refused(t, store.put({ kind: "other", content: { t: "é".repeat(40) } }), "too_large");
});

test("the default limit is 1 MiB", async (t) => {
  const { store } = await openStore(t);
  t.is(store.maxBytes, 1024 * 1024);
  await refused(t, store.put({ kind: "other", content: { t: "x".repeat(1024 * 1024) } }), "too_large");
});

test("open refuses a nonsensical maxBytes", async (t) => {
  const root = await tempRoot(t);
  await t.throwsAsync(ArtifactStore.open(root, { maxBytes: 0 }), { instanceOf: RangeError });
  await t.throwsAsync(ArtifactStore.open(root, { maxBytes: 1.5 }), { instanceOf: RangeError });
});

test("invalid kind, content, tags and metadata are refused with the field named", async (t) => {
  const { store } = await openStore(t);
  const put = (input: unknown) => store.put(input as ArtifactInput);
  await refused(t, put({ kind: "poem", content: {} }), "invalid", "/kind");
  await refused(t, put({ content: {} }), "invalid", "/kind");
  await refused(t, put({ kind: "plan" }), "invalid", "/content");
  await refused(t, put({ kind: "plan", content: [1] }), "invalid", "/content");
  await refused(t, put({ kind: "plan", content: "text" }), "invalid", "/content");
  await refused(t, put({ kind: "plan", content: null }), "invalid", "/content");
  await refused(t, put({ kind: "plan", content: new Date() }), "invalid", "/content");
  await refused(t, put({ kind: "plan", content: {}, tags: "a" }), "invalid", "/tags");
  await refused(t, put({ kind: "plan", content: {}, tags: ["a", 2] }), "invalid", "/tags/1");
  await refused(t, put({ kind: "plan", content: {}, metadata: [] }), "invalid", "/metadata");
  await refused(t, put(null), "invalid");
  t.deepEqual([...ARTIFACT_KINDS], ["plan", "summary", "diff", "trace", "other"]);
});

test("values inside content or metadata that JSON cannot carry are refused where they are", async (t) => {
  const { store } = await openStore(t);
  await refused(t, store.put({ kind: "plan", content: { x: [Number.NaN] } }), "invalid", "/content/x/0");
  await refused(t, store.put({ kind: "plan", content: { n: 1n } }), "invalid", "/content/n");
  await refused(t, store.put({ kind: "plan", content: {}, metadata: { at: new Date() } }), "invalid", "/metadata/at");
});

test("absurdly deep nesting is refused, not a crash", async (t) => {
  const { store } = await openStore(t, { maxBytes: 64 * 1024 * 1024 });
  let deep: unknown = 0;
  for (let i = 0; i < 200_000; i++) deep = [deep];
  await refused(t, store.put({ kind: "other", content: { deep } }), "invalid");
});

test("invalid ids are refused by get before any path is built; unknown ids are undefined", async (t) => {
  const { store } = await openStore(t);
  for (const id of ["../x", "../".repeat(22) + "etc", "A".repeat(64), "abc", "a".repeat(63), "a".repeat(65), "", `${"a".repeat(62)}/x`]) {
    await refused(t, store.get(id), "invalid", "id");
  }
  await refused(t, store.get(42 as unknown as string), "invalid", "id");
  t.is(await store.get("0".repeat(64)), undefined);
});

// ---------- durability ----------

test("artifacts survive closing and reopening the store", async (t) => {
  const root = await tempRoot(t);
  const first = await ArtifactStore.open(root, { clock: () => 111 });
  const parent = (await first.put({ kind: "plan", content: { step: "one" }, tags: ["a", "b"], metadata: { by: "me" } })).artifact;
  const child = (await first.put({ kind: "diff", content: { step: "two" }, parent: parent.id })).artifact;

  const second = await ArtifactStore.open(root, { clock: () => 222 });
  t.deepEqual(await second.get(parent.id), parent);
  t.deepEqual(await second.get(child.id), child);
  const again = await second.put({ kind: "plan", content: { step: "one" }, tags: ["a", "b"], metadata: { by: "me" } });
  t.false(again.created);
  t.is(again.artifact.created_ms, 111);
  t.deepEqual(
    await readdir(path.join(root, parent.id.slice(0, 2))),
    [`${parent.id}.json`].concat(child.id.slice(0, 2) === parent.id.slice(0, 2) ? [`${child.id}.json`] : []).sort(),
  );
});

test("a leftover temp file is ignored, and removed on open once its writer is gone", async (t) => {
  const root = await tempRoot(t);
  const store = await ArtifactStore.open(root, { clock: () => 5 });
  const input: ArtifactInput = { kind: "summary", content: { crashed: true } };
  const { artifact } = await store.put(input);
  const shard = path.join(root, artifact.id.slice(0, 2));
  const file = path.join(shard, `${artifact.id}.json`);
  const body = await readFile(file, "utf8");
  await rm(file);

  // A crash between write and rename leaves a complete-looking temp file behind.
  const deadPid = 4_194_305; // above Linux pid_max: never a live process
  const deadTemp = path.join(shard, `.${artifact.id}.json.${deadPid}.0123456789ab.tmp`);
  const oldTemp = path.join(shard, `.${artifact.id}.json.0badc0ffee.tmp`);
  const liveTemp = path.join(shard, `.${artifact.id}.json.${process.pid}.aaaaaaaaaaaa.tmp`);
  await writeFile(deadTemp, body);
  await writeFile(oldTemp, body.slice(0, 10));
  const old = new Date(Date.now() - 10 * 60_000);
  await utimes(oldTemp, old, old);
  await writeFile(liveTemp, body);

  const reopened = await ArtifactStore.open(root);
  const left = await readdir(shard);
  t.false(left.includes(path.basename(deadTemp)));
  t.false(left.includes(path.basename(oldTemp)));
  t.true(left.includes(path.basename(liveTemp)), "a temp file a live writer may still publish is kept");

  t.is(await reopened.get(artifact.id), undefined);
  const again = await reopened.put(input);
  t.true(again.created);
  t.deepEqual(await reopened.get(artifact.id), again.artifact);
});

test("a file that does not match its id is reported as corrupt, and a put of the true content repairs it", async (t) => {
  const { store, root } = await openStore(t);
  const input: ArtifactInput = { kind: "plan", content: { ok: true } };
  const { artifact } = await store.put(input);
  const file = path.join(root, artifact.id.slice(0, 2), `${artifact.id}.json`);
  await writeFile(file, JSON.stringify({ ...artifact, lineage: undefined, content: { ok: false } }));
  await t.throwsAsync(store.get(artifact.id), { message: /corrupt/ });
  const repaired = await store.put(input);
  t.true(repaired.created);
  t.deepEqual((await store.get(artifact.id))!.content, { ok: true });
});
