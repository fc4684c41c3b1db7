import { deepStrictEqual } from "node:assert/strict";
import test from "ava";
import fc from "fast-check";
import { JsonLinesDecoder, SseDecoder, type SseFrame } from "../../../../workers/http/stream-decoder.js";

const utf8 = new TextEncoder();

function decodeSse(chunks: Uint8Array[]): SseFrame[] {
  const decoder = new SseDecoder();
  const frames = chunks.flatMap((c) => decoder.push(c));
  return [...frames, ...decoder.end()];
}

function decodeLines(chunks: Uint8Array[]): string[] {
  const decoder = new JsonLinesDecoder();
  const lines = chunks.flatMap((c) => decoder.push(c));
  return [...lines, ...decoder.end()];
}

function split(body: Uint8Array, cuts: number[] | "bytes"): Uint8Array[] {
  if (cuts === "bytes") return Array.from(body, (_, i) => body.subarray(i, i + 1));
  const at = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const to of [...at, body.length]) {
    chunks.push(body.subarray(from, to));
    from = to;
  }
  return chunks;
}

// Chunk boundaries: anywhere (including empty chunks), or after every byte, which splits
// every multi-byte character and every CRLF.
const chunking = fc.oneof(fc.constant("bytes" as const), fc.array(fc.nat({ max: 100_000 }), { maxLength: 24 }));

// Line content: multi-byte characters, spaces and colons (which the parser must treat as text).
const char = fc.oneof(
  fc.constantFrom("é", "日本", "🦙", " ", ":", "a", "\uFEFF"),
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 }).filter((c) => !/[\r\n\0]/.test(c)),
);
const text = fc.string({ unit: char, maxLength: 10 });
const ending = fc.constantFrom("\n", "\r\n", "\r");

interface Line {
  text: string;
  end: string;
}

/** One value after `name:`; the optional space is needed when the value itself starts with one. */
function field(name: string, value: string, space: boolean): string {
  return `${name}:${space || value.startsWith(" ") ? " " : ""}${value}`;
}

const frameBlock = fc
  .record({
    dataLines: fc.array(fc.tuple(text, fc.boolean()), { minLength: 1, maxLength: 4 }),
    event: fc.option(fc.tuple(text, fc.boolean()), { nil: undefined }),
    id: fc.option(text, { nil: undefined }),
    extras: fc.array(fc.tuple(fc.constantFrom(":", ": keep-alive", "retry: 3000", "unknown: x", ":🦙"), fc.nat()), { maxLength: 3 }),
  })
  .map(({ dataLines, event, id, extras }) => {
    let lines = dataLines.map(([value, space]) => (value === "" && !space ? "data" : field("data", value, space)));
    const others: [string, number][] = [...extras];
    if (event) others.push([field("event", event[0], event[1]), event[0].length]);
    if (id !== undefined) others.push([field("id", id, true), id.length]);
    for (const [line, at] of others) lines = [...lines.slice(0, at % (lines.length + 1)), line, ...lines.slice(at % (lines.length + 1))];
    const frame: SseFrame = { data: dataLines.map(([value]) => value).join("\n") };
    if (event && event[0] !== "") frame.event = event[0];
    if (id !== undefined) frame.id = id;
    return { lines, frame };
  });

// Blocks that dispatch nothing: comments, or an event name without data (which must not leak into the next frame).
const noiseBlock = fc
  .array(
    fc.oneof(
      text.map((c) => `:${c}`),
      text.map((e) => field("event", e, true)),
      fc.constant("retry: 10"),
    ),
    { minLength: 1, maxLength: 3 },
  )
  .map((lines) => ({ lines, frame: undefined as SseFrame | undefined }));

function serialize(blocks: { lines: string[] }[], endings: string[], finalBlank: boolean): string {
  const lines: Line[] = [];
  blocks.forEach((block, i) => {
    for (const l of block.lines) lines.push({ text: l, end: "" });
    if (i < blocks.length - 1 || finalBlank) lines.push({ text: "", end: "" });
  });
  let out = "";
  lines.forEach((line, i) => {
    let end = endings[i % endings.length]!;
    // "\r" then a blank line ending in "\n" is one CRLF, not a blank line: generate what the sender meant.
    if (line.text === "" && end === "\n" && lines[i - 1]?.end === "\r") end = "\r\n";
    line.end = end;
    out += line.text + end;
  });
  return out;
}

const sseStream = fc.record({
  blocks: fc.array(fc.oneof({ arbitrary: frameBlock, weight: 4 }, { arbitrary: noiseBlock, weight: 1 }), { maxLength: 8 }),
  endings: fc.array(ending, { minLength: 1, maxLength: 5 }),
  finalBlank: fc.boolean(),
});

test("SSE: any chunking decodes to the frames of the whole body, which are the frames sent", (t) => {
  fc.assert(
    fc.property(sseStream, chunking, ({ blocks, endings, finalBlank }, cuts) => {
      const body = utf8.encode(serialize(blocks, endings, finalBlank));
      const expected = blocks.flatMap((b) => (b.frame ? [b.frame] : []));
      const whole = decodeSse([body]);
      deepStrictEqual(whole, expected);
      deepStrictEqual(decodeSse(split(body, cuts)), whole);
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test("JSON lines: any chunking decodes to the lines of the whole body, which are the lines sent", (t) => {
  const value = fc
    .record({ token: text, n: fc.integer(), nested: fc.option(fc.array(text, { maxLength: 3 })) })
    .map((v) => JSON.stringify(v));
  const item = fc.oneof({ arbitrary: value, weight: 4 }, { arbitrary: fc.constantFrom("", "  ", "\t"), weight: 1 });
  fc.assert(
    fc.property(fc.array(fc.tuple(item, ending), { maxLength: 12 }), fc.boolean(), chunking, (items, lastEnds, cuts) => {
      const body = utf8.encode(items.map(([line, end], i) => line + (i < items.length - 1 || lastEnds ? end : "")).join(""));
      const expected = items.map(([line]) => line).filter((line) => line.trim() !== "");
      const whole = decodeLines([body]);
      deepStrictEqual(whole, expected);
      deepStrictEqual(decodeLines(split(body, cuts)), whole);
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test("a CRLF split across chunks ends one line, not two", (t) => {
  const d = new SseDecoder();
  t.deepEqual(d.push(utf8.encode("data: a\r")), []);
  t.deepEqual(d.push(utf8.encode("\ndata: b\r")), []);
  t.deepEqual(d.push(utf8.encode("\n\r")), [{ data: "a\nb" }]);
  t.deepEqual(d.push(utf8.encode("\n")), []);
  t.deepEqual(d.end(), []);
});

test("a character split across chunks is decoded once", (t) => {
  const bytes = utf8.encode('data: {"content":"🦙é"}\n\n');
  const at = bytes.indexOf(0xf0) + 2;
  const d = new SseDecoder();
  t.deepEqual(d.push(bytes.subarray(0, at)), []);
  t.deepEqual(d.push(bytes.subarray(at, at + 3)), []);
  t.deepEqual(d.push(bytes.subarray(at + 3)), [{ data: '{"content":"🦙é"}' }]);
});

test("end() dispatches an unterminated frame only when it has data", (t) => {
  const withData = new SseDecoder();
  withData.push(utf8.encode('event: end\ndata: {"stop":true}'));
  t.deepEqual(withData.end(), [{ event: "end", data: '{"stop":true}' }]);

  const withoutData = new SseDecoder();
  withoutData.push(utf8.encode("event: ping\n: comment"));
  t.deepEqual(withoutData.end(), []);
});

test("SSE field rules: one space dropped, id per frame, comments and unknown fields ignored, BOM dropped", (t) => {
  const d = new SseDecoder();
  const frames = d.push(utf8.encode("\uFEFFid: 7\ndata:  two spaces\n: note\nretry: 5\nfoo\n\ndata\ndata:x\n\n"));
  t.deepEqual(frames, [{ id: "7", data: " two spaces" }, { data: "\nx" }]);
});

test("JSON lines: an unterminated last line comes out of end()", (t) => {
  const d = new JsonLinesDecoder();
  t.deepEqual(d.push(utf8.encode('{"a":1}\r\n\n{"b"')), ['{"a":1}']);
  t.deepEqual(d.push(utf8.encode(":2}")), []);
  t.deepEqual(d.end(), ['{"b":2}']);
});
