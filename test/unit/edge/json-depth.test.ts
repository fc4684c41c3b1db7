import test from "ava";
import { tooDeepAt } from "../../../edge/middleware/json-depth.js";

const nested = (levels: number, key = "a"): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = { [key]: v };
  return v;
};

test("the top-level value is level 1; a container one level past the limit is named by its pointer", (t) => {
  t.is(tooDeepAt(nested(3), 3), undefined);
  t.is(tooDeepAt(nested(4), 3), "/a/a/a");
  t.is(tooDeepAt({ ok: [1, [2]], deep: [[[[]]]] }, 3), "/deep/0/0");
  t.is(tooDeepAt("text", 1), undefined);
  t.is(tooDeepAt({ "a/b": { "c~": {} } }, 2), "/a~1b/c~0");
});

test("depth is measured without recursion, however deep the value", (t) => {
  const deep = JSON.parse("[".repeat(200_000) + "]".repeat(200_000)) as unknown;
  t.is(tooDeepAt(deep, 64), "/0".repeat(64));
});

test("a pointer too long to echo is cut at a token boundary", (t) => {
  const at = tooDeepAt(nested(40, "k".repeat(50)), 30)!;
  t.true(at.length <= 512);
  t.regex(at, /^(\/k{50})+$/);
});
