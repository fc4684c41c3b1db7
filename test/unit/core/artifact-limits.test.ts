import test from "ava";
import { ARTIFACT_KINDS, ArtifactStore, DEFAULT_MAX_ARTIFACT_BYTES, type ArtifactInput } from "../../support/artifact-json.js";
import { openStore, refused, tempRoot } from "./artifact-store-harness.js";

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
