import test from "ava";
import { apiKeyFrom, API_KEY_ENV } from "../../../contracts/runtime/api-key.js";
import { mergeFlags, sectionFlags } from "../../../contracts/runtime/config-file.js";
import { applyFlags, flagHelp, helpLine, parseArgsOptions, type FlagTable } from "../../../contracts/runtime/flag-table.js";
import { flagBoolean, flagChoice, flagInteger, flagList, flagNumber, flagText } from "../../../contracts/runtime/flag-values.js";

interface Config {
  name?: string;
  count?: number;
  loud?: boolean;
  seen: string[];
}

const TABLE: FlagTable<Config> = [
  { name: "name", arg: "S", help: "what to call it", apply: (c, v, f) => ((c.name = flagText(f, v)), c.seen.push("name")) },
  {
    name: "count",
    arg: "N",
    usage: "--count N, --loud",
    help: "how many\nand how loud",
    apply: (c, v, f) => ((c.count = flagInteger(f, v, 1, 9)), c.seen.push("count")),
  },
  { name: "loud", arg: "", apply: (c, v, f) => ((c.loud = flagBoolean(f, v)), c.seen.push("loud")) },
];

test("flags apply in table order, with or without dashes; unknown and undefined keys are left alone", (t) => {
  const config = applyFlags(TABLE, { loud: true, "--count": "3", name: undefined, other: "x" }, { seen: [] });
  t.deepEqual(config, { count: 3, loud: true, seen: ["count", "loud"] });
});

test("a bad value throws an Error naming the flag", (t) => {
  t.throws(() => applyFlags(TABLE, { count: "10" }, { seen: [] }), { message: '--count must be an integer from 1 to 9, got "10"' });
  t.throws(() => applyFlags(TABLE, { name: true }, { seen: [] }), { message: "--name needs a value" });
});

test("a flag without an argument placeholder is a switch for the command line's parser", (t) => {
  t.deepEqual(parseArgsOptions(TABLE), { name: { type: "string" }, count: { type: "string" }, loud: { type: "boolean" } });
});

test("help lines align in one column, continue under it, and a flag described by another's usage has none", (t) => {
  t.is(flagHelp(TABLE, 10), ["  --name S   what to call it", "  --count N, --loud  how many", "             and how loud"].join("\n"));
  t.is(helpLine("--a-very-long-flag X", "\nbelow it", 10), "  --a-very-long-flag X\n             below it");
  t.is(helpLine("--exactly-10", "fits", 12), "  --exactly-10 fits");
});

test("whole numbers are digits only, within bounds", (t) => {
  t.is(flagInteger("--n", "0", 0), 0);
  t.is(flagInteger("--n", "65535", 0, 65_535), 65_535);
  for (const bad of ["12abc", "1.5", "-1", " 5", "", "1e3", "0x10"]) t.throws(() => flagInteger("--n", bad, 0), { message: /^--n / }, bad);
  t.throws(() => flagInteger("--n", "0", 1), { message: '--n must be an integer of at least 1, got "0"' });
});

test("numbers are non-negative decimals", (t) => {
  t.is(flagNumber("--x", "2.5"), 2.5);
  t.is(flagNumber("--x", "0"), 0);
  for (const bad of ["-1", ".5", "1e3", "abc", "Infinity"])
    t.throws(() => flagNumber("--x", bad), { message: /^--x must be a non-negative number/ }, bad);
});

test("booleans, choices and lists", (t) => {
  t.deepEqual(
    [true, "true", "1", "yes"].map((v) => flagBoolean("--b", v)),
    [true, true, true, true],
  );
  t.deepEqual(
    [false, "false", "0", "no"].map((v) => flagBoolean("--b", v)),
    [false, false, false, false],
  );
  t.throws(() => flagBoolean("--b", "maybe"), { message: '--b must be true or false, got "maybe"' });
  t.is(flagChoice("--c", "on", ["on", "off"] as const), "on");
  t.throws(() => flagChoice("--c", "maybe", ["on", "off"] as const), { message: '--c must be one of on, off, got "maybe"' });
  t.throws(() => flagChoice("--c", true, ["on", "off"] as const), { message: "--c must be one of on, off, got true" });
  t.deepEqual(flagList("--l", " a, b ,,"), ["a", "b"]);
  t.throws(() => flagList("--l", " , "), { message: /--l needs at least one value/ });
});

test("a config section becomes flag values; structured keys are skipped; the command line wins", (t) => {
  const section = sectionFlags({ port: 1, loud: true, name: "x", budgets: { a: 1 } }, "core", ["budgets"]);
  t.deepEqual(section, { port: "1", loud: true, name: "x" });
  t.throws(() => sectionFlags({ budgets: { a: 1 } }, "core"), { message: "config: core.budgets must be a string, number or boolean" });
  t.throws(() => sectionFlags([1], "workers[0]"), { message: "config: workers[0] must be a mapping" });
  t.deepEqual(sectionFlags(undefined, "edge"), {});
  t.deepEqual(mergeFlags(section, { port: "0", name: undefined }), { port: "0", loud: true, name: "x" });
});

test.serial("the API key comes from LLORCH_API_KEY, else from the config section, never empty", (t) => {
  const saved = process.env[API_KEY_ENV];
  t.teardown(() => {
    if (saved === undefined) delete process.env[API_KEY_ENV];
    else process.env[API_KEY_ENV] = saved;
  });
  delete process.env[API_KEY_ENV];
  t.is(apiKeyFrom({ "api-key": "from-file" }), "from-file");
  t.is(apiKeyFrom({ "api-key": "" }), undefined);
  t.is(apiKeyFrom({}), undefined);
  process.env[API_KEY_ENV] = "from-env";
  t.is(apiKeyFrom({ "api-key": "from-file" }), "from-env");
});
