import test from "ava";
import { api, taskBody } from "../support/http.js";
import { TestSystem } from "../support/system.js";

// What the edge refuses before any of it reaches core: JSON nested too deep.

let sys: TestSystem;

test.before(async () => {
  sys = await TestSystem.start({ workers: [{ slots: 2 }] });
});
test.after.always(async () => sys?.stop());

/** `levels` objects inside one another, written as text (JSON.stringify would overflow the stack first). */
const nestedText = (levels: number, leaf = "1") => '{"a":'.repeat(levels) + leaf + "}".repeat(levels);
const nestedLists = (levels: number) => "[".repeat(levels) + "]".repeat(levels);

const post = (t: Parameters<typeof api>[0], path: string, rawBody: string) =>
  api(t, sys.edgeUrl, "POST", path, { rawBody, headers: { "Content-Type": "application/json" } });

test("a body nested deeper than --json-max-depth (64) is a 400 naming where, on every route that reads JSON", async (t) => {
  const bodies: Array<[string, string]> = [
    ["/v1/tasks", JSON.stringify(taskBody()).replace(/}$/, `,"extra":${nestedText(64)}}`)],
    ["/v1/artifacts", `{"kind":"trace","content":${nestedText(64)}}`],
    ["/v1/catalog/models", `{"id":"deep","digest":"sha256:01ab23cd45ef","verification":${nestedText(64)}}`],
    ["/v1/chat/completions", `{"model":"mock:tiny","messages":[{"role":"user","content":"hi"}],"metadata":${nestedLists(64)}}`],
    ["/v1/messages", `{"model":"mock:tiny","max_tokens":2,"messages":[{"role":"user","content":"hi"}],"metadata":${nestedText(64)}}`],
  ];
  for (const [path, body] of bodies) {
    const res = await post(t, path, body);
    t.is(res.status, 400, `${path}: ${res.text.slice(0, 200)}`);
    t.regex(res.text, /deeper than 64 levels at \/(extra|content|verification|metadata)(\/a|\/0)+/, path);
  }
  const native = await post(t, "/v1/artifacts", `{"kind":"trace","content":${nestedText(64)}}`);
  t.is(native.json.code, "INVALID_PARAMS");
  t.is(native.json.field, "/content" + "/a".repeat(63));
  const atTheLimit = await post(t, "/v1/tasks", JSON.stringify(taskBody()).replace(/}$/, `,"extra":${nestedText(63)}}`));
  t.is(atTheLimit.status, 202, "64 levels, the body's own included, pass");
});

test("about 2,000 levels, and 200,000, are the same 400: nothing recurses into them", async (t) => {
  for (const levels of [2_000, 200_000]) {
    for (const path of ["/v1/artifacts", "/v1/tasks", "/v1/catalog/models", "/v1/pools/default/drain"]) {
      const res = await post(t, path, nestedLists(levels));
      t.is(res.status, 400, `${path} at ${levels}: ${res.text.slice(0, 200)}`);
      t.is(res.json.code, "INVALID_PARAMS");
      t.regex(res.json.message, /deeper than 64 levels/);
    }
  }
});

test("artifact content at 33 levels, which core could not decode, is a 400 naming the field; 30 levels are stored", async (t) => {
  const deep = await post(t, "/v1/artifacts", `{"kind":"trace","content":${nestedText(33)}}`);
  t.is(deep.status, 400, deep.text);
  t.like(deep.json, { code: "INVALID_PARAMS", field: "/content" });
  t.regex(deep.json.message, /nests too deeply for protobuf/);
  const metadata = await post(t, "/v1/artifacts", `{"kind":"trace","content":{},"metadata":${nestedText(33)}}`);
  t.like(metadata.json, { code: "INVALID_PARAMS", field: "/metadata" });
  const fits = await post(t, "/v1/artifacts", `{"kind":"trace","content":${nestedText(30)}}`);
  t.is(fits.status, 201, fits.text);
  const back = await api(t, sys.edgeUrl, "GET", `/v1/artifacts/${fits.json.id}`);
  t.is(back.status, 200);
  t.is(JSON.stringify(back.json.content), nestedText(30));
});
