import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGgufFileInfo } from "node-llama-cpp";
import { demoModelGguf } from "../../../../workers/gguf/demo-model.js";
import { demoVocabulary } from "../../../../workers/gguf/demo-vocabulary.js";
import { encodeGguf } from "../../../../workers/gguf/gguf-writer.js";
import { checkHeader, readGgufHeader } from "../../../../workers/gguf/gguf-header.js";

const dir = mkdtempSync(join(tmpdir(), "llorch-gguf-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, chunks: Buffer[]): string {
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat(chunks));
  return path;
}

// node-llama-cpp's own GGUF parser is the independent reader these tests check the writer against.
test("llama.cpp's GGUF reader reads back every metadata type and each tensor at an aligned offset", async (t) => {
  const path = write(
    "kinds.gguf",
    encodeGguf({
      metadata: [
        ["general.architecture", { type: "string", value: "llama" }],
        ["general.alignment", { type: "uint32", value: 64 }],
        ["test.i32", { type: "int32", value: -7 }],
        ["test.f32", { type: "float32", value: 0.5 }],
        ["test.u64", { type: "uint64", value: 2 ** 40 }],
        ["test.flag", { type: "bool", value: true }],
        ["test.names", { type: "array", of: "string", values: ["a", "ß", "🦙"] }],
        ["test.ints", { type: "array", of: "int32", values: [1, -2, 3] }],
      ],
      tensors: [
        { name: "a", dims: [3], data: new Float32Array([1, 2, 3]) },
        { name: "b", dims: [2, 2], data: new Float32Array([4, 5, 6, 7]) },
      ],
    }),
  );
  const info = await readGgufFileInfo(path, { logWarnings: false });
  t.is(info.version, 3);
  const m = info.metadata as unknown as Record<string, Record<string, unknown>>;
  t.is(m["general"]!["alignment"], 64);
  t.deepEqual(m["test"], { i32: -7, f32: 0.5, u64: BigInt(2 ** 40), flag: true, names: ["a", "ß", "🦙"], ints: [1, -2, 3] });
  const tensors = info.fullTensorInfo ?? [];
  t.deepEqual(
    tensors.map((x) => [x.name, x.dimensions.map(Number), Number(x.offset)]),
    [
      ["a", [3], 0],
      ["b", [2, 2], 64],
    ],
  );
});

test("a tensor whose dims do not match its data is refused instead of written", (t) => {
  t.throws(() => encodeGguf({ metadata: [], tensors: [{ name: "x", dims: [2, 3], data: new Float32Array(5) }] }), {
    message: /2x3 hold 6 values, data has 5/,
  });
});

test("the same options write the same bytes; another seed writes other weights", (t) => {
  const a = Buffer.concat(demoModelGguf({ seed: 9 }));
  t.deepEqual(Buffer.concat(demoModelGguf({ seed: 9 })), a);
  t.notDeepEqual(Buffer.concat(demoModelGguf({ seed: 10 })), a);
});

test("the demo vocabulary has 256 byte tokens typed as bytes, control tokens, and every prefix of every word", (t) => {
  const v = demoVocabulary();
  const bytes = v.tokens.filter((_, i) => v.types[i] === 6);
  t.is(bytes.length, 256);
  t.is(bytes[0], "<0x00>");
  t.is(bytes[255], "<0xFF>");
  t.is(v.tokens[v.bos], "<s>");
  t.is(v.tokens[v.eos], "</s>");
  t.is(v.types[v.eos], 3);
  for (const piece of ["\u2581l", "\u2581ll", "\u2581lla", "\u2581llam", "\u2581llama"]) t.true(v.tokens.includes(piece), piece);
  t.is(new Set(v.tokens).size, v.tokens.length, "no piece twice");
});

test("each demo model kind declares what llama.cpp needs to serve it", async (t) => {
  const meta = async (kind: "generation" | "embedding" | "ranking") => {
    const info = await readGgufFileInfo(write(`${kind}.gguf`, demoModelGguf({ kind })), { logWarnings: false });
    return { info, arch: info.metadata.general.architecture as string };
  };
  const g = await meta("generation");
  t.is(g.arch, "llama");
  t.is((g.info.architectureMetadata as { pooling_type?: number }).pooling_type, undefined);
  const e = await meta("embedding");
  t.is((e.info.architectureMetadata as { pooling_type?: number }).pooling_type, 1);
  const r = await meta("ranking");
  t.is(r.arch, "qwen3");
  t.true((r.info.fullTensorInfo ?? []).some((x) => x.name === "cls.output.weight"));
});

test("the header check refuses what is not GGUF, an unknown version, and counts the file cannot hold", async (t) => {
  const demo = write("ok.gguf", demoModelGguf());
  t.is((await readGgufHeader(demo)).version, 3);
  const garbage = join(dir, "garbage.gguf");
  writeFileSync(garbage, "GGUF this is not a model");
  await t.throwsAsync(readGgufHeader(garbage), { message: /unsupported GGUF version/ });
  const text = join(dir, "text.gguf");
  writeFileSync(text, "hello, world, long enough to have a header of 24 bytes");
  await t.throwsAsync(readGgufHeader(text), { message: /not a GGUF file/ });
  const header = Buffer.alloc(24);
  header.write("GGUF", 0, "latin1");
  header.writeUInt32LE(3, 4);
  header.writeBigUInt64LE(10n ** 12n, 8);
  t.throws(() => checkHeader(header, 1_000), { message: /cannot fit in 1000 bytes/ });
});
