import test from "ava";
import { createHash } from "node:crypto";
import { Artifact } from "../../../contracts/gen/llama_orch/v1/artifact.js";
import { artifactFromJson, encodeDocument, idOf, toDocument } from "../../../core/artifacts/artifact-document.js";

// Ids as the build before typed artifact messages computed them: the sha256 of
// the canonical JSON of the body's kind, content, tags, parent and metadata,
// written out here by hand.
const sha = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");
const PARENT = "a".repeat(64);
const CASES: Array<[body: Record<string, unknown>, canonical: string]> = [
  [{ kind: "plan", content: { steps: ["a", "b"] } }, '{"content":{"steps":["a","b"]},"kind":"plan"}'],
  [{ kind: "plan", content: { steps: ["a", "b"] }, tags: [] }, '{"content":{"steps":["a","b"]},"kind":"plan","tags":[]}'],
  [
    {
      metadata: { b: 1, a: 2 },
      parent: PARENT,
      tags: ["p", "q"],
      content: { note: "héllo 🦙", n: -0.5, z: null },
      kind: "summary",
      id: "ignored",
      created_ms: 5,
    },
    `{"content":{"n":-0.5,"note":"héllo 🦙","z":null},"kind":"summary","metadata":{"a":2,"b":1},"parent":"${PARENT}","tags":["p","q"]}`,
  ],
  [{ kind: "trace", content: {}, metadata: {} }, '{"content":{},"kind":"trace","metadata":{}}'],
];

test("a document keeps the id it had, after the trip from HTTP JSON through gRPC into core", (t) => {
  for (const [body, canonical] of CASES) {
    // What the edge decodes and core receives: the message, through its binary wire form.
    const received = Artifact.decode(Artifact.encode(artifactFromJson(body)).finish());
    const encoded = encodeDocument(toDocument(received));
    t.is(encoded, canonical);
    t.is(idOf(encoded), sha(canonical));
  }
});
