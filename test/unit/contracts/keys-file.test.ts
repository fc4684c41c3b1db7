import test from "ava";
import { hashOfKey, newKey, parseKeysFile } from "../../../contracts/runtime/auth/keys-file.js";

const H1 = hashOfKey("key-one");
const H2 = hashOfKey("key-two");

test("named keys with a role, a hash and optional limits and budgets", (t) => {
  const entries = parseKeysFile(`
keys:
  alice: { role: client, hash: "${H1}", rate-limit: { per-second: 2.5 }, session-budgets: { tokens: 1000, time-ms: 60000, cost: 1.5 } }
  ops:
    role: admin
    hash: "${H2.toUpperCase().replace("SHA256:", "sha256:")}"
    rate-limit: { per-second: 10, burst: 20 }
`);
  t.deepEqual(entries, [
    {
      name: "alice",
      role: "client",
      sha256: H1.slice(7),
      rateLimit: { perSecond: 2.5, burst: 3 },
      sessionBudgets: { tokens: 1000, timeMs: 60000, cost: 1.5 },
    },
    { name: "ops", role: "admin", sha256: H2.slice(7), rateLimit: { perSecond: 10, burst: 20 } },
  ]);
});

for (const [what, text, message] of [
  ["no keys mapping", "keys: [a, b]", /`keys:` mapping/],
  ["an unknown role", `keys: { a: { role: root, hash: "${H1}" } }`, /keys\.a\.role must be one of client, admin, worker/],
  [
    "a key in clear instead of its hash",
    "keys: { a: { role: client, hash: llorch_s3cr3t-value } }",
    /keys\.a\.hash must be "sha256:<64 hex digits>"/,
  ],
  ["a setting it does not know", `keys: { a: { role: client, hash: "${H1}", key: x } }`, /keys\.a: unknown setting "key"/],
  [
    "a burst below one",
    `keys: { a: { role: client, hash: "${H1}", rate-limit: { per-second: 1, burst: 0 } } }`,
    /burst must be an integer of at least 1/,
  ],
  [
    "a fractional token budget",
    `keys: { a: { role: client, hash: "${H1}", session-budgets: { tokens: 1.5 } } }`,
    /tokens must be an integer/,
  ],
  [
    "one hash under two names",
    `keys: { a: { role: client, hash: "${H1}" }, b: { role: admin, hash: "${H1}" } }`,
    /keys a and b have the same hash/,
  ],
  ["a name with a space", `keys: { "a b": { role: client, hash: "${H1}" } }`, /key name "a b" must be letters/],
  ["broken YAML", "keys:\n  a: llorch_s3cr3t-value\n   b: [\n", /not valid YAML: .* at line 2/],
] as const) {
  test(`a keys file with ${what} is refused, saying where, without quoting a value`, (t) => {
    const err = t.throws(() => parseKeysFile(text), { message });
    t.false(err?.message.includes("s3cr3t") ?? true, "the message never quotes what may be a key");
  });
}

test("new keys are random, 256 bits, and only their hash goes in the file", (t) => {
  const a = newKey();
  const b = newKey();
  t.not(a, b);
  t.regex(a, /^llorch_[A-Za-z0-9_-]{43}$/);
  t.regex(hashOfKey(a), /^sha256:[0-9a-f]{64}$/);
  t.false(hashOfKey(a).includes(a.slice(7)));
});
