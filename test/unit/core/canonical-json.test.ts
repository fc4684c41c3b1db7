import test from "ava";
import fc from "fast-check";
import { isDeepStrictEqual } from "node:util";
import { canonicalJson, CanonicalJsonError } from "../../../core/artifacts/canonical-json.js";

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
