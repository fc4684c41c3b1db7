import test from "ava";
import fc from "fast-check";
import path from "node:path";
import { formatModelRef, localPathOf, ModelRefError, parseModelRef, type ModelRef } from "../../contracts/model-ref.js";

const accepted: [string, ModelRef][] = [
  ["hf:TinyOrg/tiny-chat-GGUF/tiny-chat.q4_0.gguf", { scheme: "hf", org: "TinyOrg", repo: "tiny-chat-GGUF", file: "tiny-chat.q4_0.gguf" }],
  ["hf:ExampleLab/example-7b-instruct", { scheme: "hf", org: "ExampleLab", repo: "example-7b-instruct" }],
  ["hf:org/repo/sub/dir/w.gguf", { scheme: "hf", org: "org", repo: "repo", file: "sub/dir/w.gguf" }],
  ["hf:org/repo@v1.2/w.gguf", { scheme: "hf", org: "org", repo: "repo", revision: "v1.2", file: "w.gguf" }],
  ["hf:org/repo@main", { scheme: "hf", org: "org", repo: "repo", revision: "main" }],
  [
    `hf:org/repo@${"0123456789abcdef".repeat(2)}01234567/sub/w.gguf`,
    { scheme: "hf", org: "org", repo: "repo", revision: `${"0123456789abcdef".repeat(2)}01234567`, file: "sub/w.gguf" },
  ],
  ["file:/models/tiny-chat.gguf", { scheme: "file", path: "/models/tiny-chat.gguf" }],
  ["file:models/x.gguf", { scheme: "file", path: "models/x.gguf" }],
  ["file:///models/x.gguf", { scheme: "file", path: "/models/x.gguf" }],
  ["models/x.gguf", { scheme: "file", path: "models/x.gguf" }],
  ["./x", { scheme: "file", path: "./x" }],
  ["/abs/x", { scheme: "file", path: "/abs/x" }],
  ["../up/x.gguf", { scheme: "file", path: "../up/x.gguf" }],
  ["x.gguf", { scheme: "file", path: "x.gguf" }],
  ["https://example.org/w/model.tar.gz?sig=abc", { scheme: "https", url: "https://example.org/w/model.tar.gz?sig=abc" }],
  ["s3://my-bucket/triton/repo", { scheme: "s3", bucket: "my-bucket", key: "triton/repo" }],
  ["s3://b/k", { scheme: "s3", bucket: "b", key: "k" }],
  ["oci://ghcr.io/acme/models/tiny:v1.2", { scheme: "oci", registry: "ghcr.io", repository: "acme/models/tiny", reference: "v1.2" }],
  ["oci://localhost:5000/tiny:latest", { scheme: "oci", registry: "localhost:5000", repository: "tiny", reference: "latest" }],
  [
    `oci://registry.example/acme/tiny@sha256:${"ab".repeat(32)}`,
    { scheme: "oci", registry: "registry.example", repository: "acme/tiny", reference: `@sha256:${"ab".repeat(32)}` },
  ],
];

for (const [raw, want] of accepted) {
  test(`accepts ${raw}`, (t) => {
    t.deepEqual(parseModelRef(raw), want);
  });
}

const rejected: [string, string, RegExp][] = [
  ["empty", "", /empty/],
  ["whitespace only", "   \t", /empty/],
  ["surrounding whitespace", " hf:a/b", /whitespace/],
  ["NUL byte", "models/x\0.gguf", /control/],
  ["newline", "hf:a/b\nx", /control/],
  ["http", "http://example.org/m.gguf", /unsupported scheme "http:"/],
  ["ftp", "ftp://example.org/m.gguf", /unsupported scheme/],
  ["mock", "mock:tiny", /unsupported scheme "mock:"/],
  ["hf without repo", "hf:org", /org>\/<repo/],
  ["hf with empty repo", "hf:org/", /bad hf repo/],
  ["hf empty", "hf:", /hf/],
  ["hf with ..", "hf:org/repo/../x", /bad hf file path/],
  ["hf with empty segment", "hf:org/repo//x", /bad hf file path/],
  ["hf with empty revision", "hf:org/repo@/x", /bad hf revision/],
  ["hf with two revisions", "hf:org/repo@a@b/x", /bad hf revision/],
  ["hf revision with a colon", "hf:org/repo@a:b", /bad hf revision/],
  ["hf revision starting with a dot", "hf:org/repo@.hidden", /bad hf revision/],
  ["hf revision on the org", "hf:org@main/repo", /bad hf org/],
  ["file with nothing", "file:", /needs a path/],
  ["file URL with host", "file://host/x", /empty host/],
  ["https without host", "https:///x", /https/],
  ["https with backslash host", "https:\\\\example.org/x", /https/],
  ["https malformed", "https://exa mple.org/", /https/],
  ["https with credentials", "https://u:p@example.org/x", /credentials/],
  ["s3 without key", "s3://bucket", /missing key/],
  ["s3 with empty key", "s3://bucket/", /missing key/],
  ["s3 without bucket", "s3:///key", /bucket/],
  ["s3 without slashes", "s3:bucket/key", /s3:\/\//],
  ["oci without tag", "oci://ghcr.io/acme/tiny", /tag/],
  ["oci without repository", "oci://ghcr.io", /repository/],
  ["oci with uppercase repository", "oci://ghcr.io/Acme/tiny:v1", /repository/],
  ["oci with short sha256", "oci://ghcr.io/acme/tiny@sha256:abc", /64/],
  ["oci with bad tag", "oci://ghcr.io/acme/tiny:-bad", /tag/],
  ["unknown scheme", "gs://bucket/key", /unsupported scheme/],
];

for (const [name, raw, why] of rejected) {
  test(`rejects ${name}`, (t) => {
    const err = t.throws(() => parseModelRef(raw), { instanceOf: ModelRefError });
    t.regex(err.message, why);
    // Every rejection tells the caller what would have worked.
    t.regex(err.message, /supported forms: hf:.*file:.*https:\/\/.*s3:\/\/.*oci:\/\//);
    t.is(err.field, "/model_ref");
  });
}

test("the error field can be chosen by the caller", (t) => {
  const err = t.throws(() => parseModelRef("http://x", "/new_model_ref"), { instanceOf: ModelRefError });
  t.is(err.field, "/new_model_ref");
});

test("localPathOf resolves relative file refs against baseDir and ignores remote refs", (t) => {
  t.is(localPathOf(parseModelRef("models/x.gguf"), "/srv/llorch"), path.resolve("/srv/llorch/models/x.gguf"));
  t.is(localPathOf(parseModelRef("file:./x"), "/srv"), path.resolve("/srv/x"));
  t.is(localPathOf(parseModelRef("file:/abs/x"), "/srv"), "/abs/x");
  t.is(localPathOf(parseModelRef("/abs/x"), "/srv"), "/abs/x");
  t.is(localPathOf(parseModelRef("hf:a/b"), "/srv"), undefined);
  t.is(localPathOf(parseModelRef("s3://b/k"), "/srv"), undefined);
  t.is(localPathOf(parseModelRef("https://h/x"), "/srv"), undefined);
  t.is(localPathOf(parseModelRef("oci://r/x:1"), "/srv"), undefined);
});

const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,12}$/);
const lower = fc.stringMatching(/^[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8})?$/);
const pathSeg = fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,10}$/).filter((s) => s !== "." && s !== "..");
const arbRef: fc.Arbitrary<ModelRef> = fc.oneof(
  fc.record({ scheme: fc.constant("hf" as const), org: name, repo: name }),
  fc.record({
    scheme: fc.constant("hf" as const),
    org: name,
    repo: name,
    file: fc.array(pathSeg, { minLength: 1, maxLength: 3 }).map((p) => p.join("/")),
  }),
  fc.record({
    scheme: fc.constant("hf" as const),
    org: name,
    repo: name,
    revision: name,
    file: fc.array(pathSeg, { minLength: 1, maxLength: 3 }).map((p) => p.join("/")),
  }),
  fc.record({ scheme: fc.constant("hf" as const), org: name, repo: name, revision: name }),
  fc.record({
    scheme: fc.constant("file" as const),
    path: fc.tuple(fc.boolean(), fc.array(pathSeg, { minLength: 1, maxLength: 4 })).map(([abs, p]) => (abs ? "/" : "") + p.join("/")),
  }),
  fc.record({
    scheme: fc.constant("s3" as const),
    bucket: name,
    key: fc.array(pathSeg, { minLength: 1, maxLength: 3 }).map((p) => p.join("/")),
  }),
  fc.record({
    scheme: fc.constant("oci" as const),
    registry: fc.constantFrom("ghcr.io", "localhost:5000", "r.example"),
    repository: fc.array(lower, { minLength: 1, maxLength: 3 }).map((p) => p.join("/")),
    reference: fc.oneof(
      fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/),
      fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `@sha256:${h}`),
    ),
  }),
);

test("formatModelRef and parseModelRef round-trip", (t) => {
  fc.assert(
    fc.property(arbRef, (ref) => {
      t.deepEqual(parseModelRef(formatModelRef(ref)), ref);
    }),
  );
});

test("parseModelRef either returns a ref or throws ModelRefError, never anything else", (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), (raw) => {
      try {
        parseModelRef(raw);
      } catch (err) {
        if (!(err instanceof ModelRefError)) throw err;
      }
    }),
  );
  t.pass();
});
