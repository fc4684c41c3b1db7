import test from "ava";
import { CreateArtifactRequest, type Artifact } from "../../contracts/gen/llama_orch/v1/artifact.js";
import { MAX_MESSAGE_NESTING, PublicJsonError, publicJson } from "../../contracts/public-json.js";

// Protobuf decoders give up past 100 nested messages, and each level of a
// free-form JSON object costs three (Struct, map entry, Value): the codec
// refuses what core could not decode, naming the field.

const artifacts = publicJson<Artifact>("llama_orch.v1.Artifact");

const objects = (levels: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
};

const lists = (levels: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = [v];
  return v;
};

/** The deepest content the codec takes of `make`'s kind, and whether it refuses one level more with the field named. */
function deepestAccepted(make: (levels: number) => unknown): number {
  let levels = 1;
  while (levels < 200) {
    try {
      artifacts.decode({ kind: "trace", content: { x: make(levels + 1) } });
      levels++;
    } catch (err) {
      if (!(err instanceof PublicJsonError) || err.field !== "/content") throw err;
      return levels;
    }
  }
  return levels;
}

test("the deepest free-form JSON the codec accepts still decodes inside the request that carries it", (t) => {
  for (const make of [objects, lists]) {
    const levels = deepestAccepted(make);
    const artifact = artifacts.decode({ kind: "trace", content: { x: make(levels) } });
    const bytes = CreateArtifactRequest.encode({ artifact }).finish();
    t.notThrows(() => CreateArtifactRequest.decode(bytes), `${levels} levels`);
  }
  t.is(deepestAccepted(objects), 30, "30 objects under content's own: about a third of the message budget");
  t.true(deepestAccepted(lists) > 40);
  t.true(MAX_MESSAGE_NESTING < 100, "headroom for the messages that wrap a decoded one");
});

test("content core could not decode is refused by the codec, naming the field", (t) => {
  const content = { x: objects(40) } as Artifact["content"];
  const bytes = CreateArtifactRequest.encode({ artifact: { ...artifacts.decode({ kind: "trace" }), content } }).finish();
  t.throws(() => CreateArtifactRequest.decode(bytes), { message: /recursion limit/ }, "core's decoder gives up on it");
  const err = t.throws(() => artifacts.decode({ kind: "trace", content }), { instanceOf: PublicJsonError });
  t.is(err.field, "/content");
  t.regex(err.message, /nests too deeply for protobuf: free-form JSON here holds at most 31 levels of objects/);
});
